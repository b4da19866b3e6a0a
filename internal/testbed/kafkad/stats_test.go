package main

import (
	"encoding/binary"
	"slices"
	"testing"
)

// frames returns the headers and sizes feed reports for stream, fed in
// pieces cut at cuts.
func frames(stream []byte, need int, cuts []byte) (hdrs [][]byte, sizes []int) {
	f := framer{need: need}
	done := func(hdr []byte, size int) {
		hdrs = append(hdrs, slices.Clone(hdr))
		sizes = append(sizes, size)
	}
	for _, c := range cuts {
		n := min(int(c), len(stream))
		f.feed(stream[:n], done)
		stream = stream[n:]
	}
	f.feed(stream, done)
	return hdrs, sizes
}

// request is a request frame of API key with correlation id corr and a
// body of n bytes.
func request(key int16, corr int32, n int) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+n))
	b = binary.BigEndian.AppendUint16(b, uint16(key))
	b = binary.BigEndian.AppendUint16(b, 3)
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	return append(b, make([]byte, n)...)
}

func TestFramerFindsEveryFrameHoweverCut(t *testing.T) {
	var stream []byte
	for i, n := range []int{0, 5, 300, 1, 70000} {
		stream = append(stream, request(int16(i), int32(100+i), n)...)
	}
	for _, tc := range []struct {
		name string
		cuts []byte
	}{
		{"whole", nil},
		{"byte by byte", slices.Repeat([]byte{1}, len(stream))},
		{"inside headers", []byte{3, 5, 7, 11, 2, 1, 200, 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdrs, sizes := frames(stream, 12, tc.cuts)
			if want := []int{12, 17, 312, 13, 70012}; !slices.Equal(sizes, want) {
				t.Fatalf("frame sizes = %v; want %v", sizes, want)
			}
			for i, h := range hdrs {
				if key, corr := binary.BigEndian.Uint16(h[4:]), binary.BigEndian.Uint32(h[8:]); key != uint16(i) || corr != uint32(100+i) {
					t.Fatalf("frame %d: key %d, correlation %d; want %d, %d", i, key, corr, i, 100+i)
				}
			}
		})
	}
}

// FuzzFramer feeds any stream in any pieces: the frames found are those
// found when it is fed whole.
func FuzzFramer(f *testing.F) {
	f.Add(append(request(1, 7, 20), request(0, 8, 3)...), []byte{2, 13})
	f.Fuzz(func(t *testing.T, stream, cuts []byte) {
		wantH, wantS := frames(stream, 12, nil)
		gotH, gotS := frames(stream, 12, cuts)
		if !slices.Equal(gotS, wantS) || len(gotH) != len(wantH) {
			t.Fatalf("cut at %v: sizes %v; whole: %v", cuts, gotS, wantS)
		}
		for i := range gotH {
			if !slices.Equal(gotH[i], wantH[i]) {
				t.Fatalf("cut at %v: frame %d header %x; whole: %x", cuts, i, gotH[i], wantH[i])
			}
		}
	})
}
