package worker

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

// TestSettingsReadNoObjects: the settings (conf, loaded by every process
// and by check) know the rules' words, not the archive readers that
// apply them to objects.
func TestSettingsReadNoObjects(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/fsigkd/fsigkd/conf").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/fsigkd/fsigkd/unpack" || strings.HasPrefix(dep, "github.com/fsigkd/fsigkd/proxy") {
			t.Errorf("the settings depend on %s", dep)
		}
	}
}
