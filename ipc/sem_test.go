package ipc

import (
	"errors"
	"os"
	"testing"
)

func TestTakeGiveAndProcView(t *testing.T) {
	s, err := Create(3)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Remove()
	if err := s.TryTake(1); err != nil {
		t.Fatal(err)
	}
	if err := s.TryTake(1); !errors.Is(err, ErrBusy) {
		t.Fatalf("second take of slot 1: %v, want busy", err)
	}
	if n, _ := s.InUse(); n != 1 {
		t.Fatalf("in use %d, want 1", n)
	}
	info, err := Lookup(s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if info.NSems != 3 || info.UID != os.Getuid() || info.Perms&0o777 != 0o600 {
		t.Errorf("/proc/sysvipc/sem says %+v", info)
	}
	if err := s.Give(1); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.InUse(); n != 0 {
		t.Fatalf("in use %d after give", n)
	}
	if err := s.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := Lookup(s.ID); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("removed set still listed: %v", err)
	}
}
