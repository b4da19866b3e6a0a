package main
import (
 _ "github.com/twmb/franz-go/pkg/kfake"
 _ "github.com/twmb/franz-go/pkg/kgo"
 _ "github.com/segmentio/kafka-go"
 _ "github.com/redis/go-redis/v9"
 _ "github.com/alicebob/miniredis/v2"
 _ "go.yaml.in/yaml/v3"
 _ "go.uber.org/zap"
 _ "go.uber.org/goleak"
 _ "github.com/prometheus/client_golang/prometheus"
)
func main(){}
