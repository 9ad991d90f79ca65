package eicar

import (
	"crypto/md5"
	"encoding/hex"
	"testing"
)

func TestEICARIsTheStandardFile(t *testing.T) {
	sum := md5.Sum([]byte(String))
	if len(String) != 68 || hex.EncodeToString(sum[:]) != "44d88612fea8a8f36de82e1278abb02f" {
		t.Fatalf("EICAR is %d bytes, md5 %x", len(String), sum)
	}
}
