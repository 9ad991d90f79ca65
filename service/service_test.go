package service

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProxiesKnowNothingOfProcesses: the proxies are built on this
// contract alone: neither the supervisor (processes, semaphores, signals)
// nor the bundled engine is among their dependencies.
func TestProxiesKnowNothingOfProcesses(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/fsigkd/fsigkd/proxy/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/fsigkd/fsigkd/supervisor", "github.com/fsigkd/fsigkd/fsavd/engine", "github.com/fsigkd/fsigkd/fsavd"} {
			if dep == banned {
				t.Errorf("the proxies depend on %s", dep)
			}
		}
	}
}
