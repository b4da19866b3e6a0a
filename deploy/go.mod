module github.com/breakwater/breakwater/deploy

go 1.26.8

replace github.com/breakwater/breakwater => ../
