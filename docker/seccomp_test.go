//go:build linux

// Package docker holds no code: only the tests of the files beside them
// (the image, the compose files, their configuration).
package docker

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"testing"

	"github.com/moby/profiles/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var update = flag.Bool("update", false, "rewrite seccomp-chromium.json from Docker's default profile")

const profileFile = "seccomp-chromium.json"

// chromiumRules are what Chromium's sandbox needs beyond Docker's default
// profile. Debian's Chromium has no setuid sandbox helper: its sandbox
// builds user, PID and network namespaces of its own, with clone(2) and
// unshare(2). Docker's default profile allows those namespace flags only
// to a container with CAP_SYS_ADMIN (which Tandem's containers must not
// have). Each rule lets a call through when one of the flags is set; the
// kernel still decides: a new PID or network namespace needs CAP_SYS_ADMIN
// in the current user namespace, which the container's unprivileged user
// has only inside a user namespace it created itself. The cost: a process
// in the container may create user namespaces, the kernel surface that an
// unprivileged process on the host has anyway where they are enabled.
// clone3 stays refused with ENOSYS (glibc and Chromium fall back to
// clone), as in Docker's profile.
func chromiumRules() []*seccomp.Syscall {
	var rules []*seccomp.Syscall
	for _, fl := range []struct {
		name string
		bit  uint64
	}{{"CLONE_NEWUSER", unix.CLONE_NEWUSER}, {"CLONE_NEWPID", unix.CLONE_NEWPID}, {"CLONE_NEWNET", unix.CLONE_NEWNET}} {
		rules = append(rules,
			&seccomp.Syscall{
				LinuxSyscall: specs.LinuxSyscall{Names: []string{"clone", "unshare"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: 0, Value: fl.bit, ValueTwo: fl.bit, Op: specs.OpMaskedEqual}}},
				Comment:  "Tandem: Chromium's namespace sandbox, " + fl.name + " (docker/seccomp_test.go)",
				Excludes: &seccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}, Arches: []string{"s390", "s390x"}},
			},
			// s390 passes clone's flags second, as Docker's own rule says.
			&seccomp.Syscall{
				LinuxSyscall: specs.LinuxSyscall{Names: []string{"clone"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: 1, Value: fl.bit, ValueTwo: fl.bit, Op: specs.OpMaskedEqual}}},
				Comment:  "Tandem: Chromium's namespace sandbox, " + fl.name + ", s390 argument order",
				Includes: &seccomp.Filter{Arches: []string{"s390", "s390x"}},
				Excludes: &seccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}},
			},
			&seccomp.Syscall{
				LinuxSyscall: specs.LinuxSyscall{Names: []string{"unshare"}, Action: specs.ActAllow,
					Args: []specs.LinuxSeccompArg{{Index: 0, Value: fl.bit, ValueTwo: fl.bit, Op: specs.OpMaskedEqual}}},
				Comment:  "Tandem: Chromium's namespace sandbox, " + fl.name + ", unshare on s390",
				Includes: &seccomp.Filter{Arches: []string{"s390", "s390x"}},
				Excludes: &seccomp.Filter{Caps: []string{"CAP_SYS_ADMIN"}},
			})
	}
	return rules
}

// chromiumProfile is Docker's default profile (github.com/moby/profiles,
// the version in go.mod) plus chromiumRules.
func chromiumProfile(t *testing.T) []byte {
	t.Helper()
	p := seccomp.DefaultProfile()
	p.Syscalls = append(p.Syscalls, chromiumRules()...)
	b, err := json.MarshalIndent(p, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	return append(b, '\n')
}

// TestSeccompProfile keeps seccomp-chromium.json, the profile the compose
// files give the containers that run Chromium, equal to what
// chromiumProfile makes: edit chromiumRules (or update moby/profiles) and
// run `go test ./docker -run TestSeccompProfile -update`.
func TestSeccompProfile(t *testing.T) {
	want := chromiumProfile(t)
	if *update {
		if err := os.WriteFile(profileFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(profileFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is not Docker's default profile plus chromiumRules; run go test ./docker -run TestSeccompProfile -update", profileFile)
	}
	// What the file says, read back as Docker reads it: the namespace
	// flags are allowed without CAP_SYS_ADMIN, nothing else is added.
	var p seccomp.Seccomp
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatalf("%s: %v", profileFile, err)
	}
	if p.DefaultAction != specs.ActErrno {
		t.Errorf("defaultAction %s, want %s", p.DefaultAction, specs.ActErrno)
	}
	allowed := map[uint64]bool{}
	for _, s := range p.Syscalls {
		if s.Action != specs.ActAllow || len(s.Args) != 1 || s.Args[0].Index != 0 || s.Excludes == nil || len(s.Excludes.Caps) == 0 {
			continue
		}
		a := s.Args[0]
		if a.Op == specs.OpMaskedEqual && a.Value == a.ValueTwo && len(s.Names) == 2 && s.Names[0] == "clone" && s.Names[1] == "unshare" {
			allowed[a.Value] = true
		}
	}
	for _, bit := range []uint64{unix.CLONE_NEWUSER, unix.CLONE_NEWPID, unix.CLONE_NEWNET} {
		if !allowed[bit] {
			t.Errorf("no rule lets clone/unshare with flag %#x through without CAP_SYS_ADMIN", bit)
		}
	}
	if d := len(p.Syscalls) - len(seccomp.DefaultProfile().Syscalls); d != len(chromiumRules()) {
		t.Errorf("%d rules beyond Docker's default, want %d", d, len(chromiumRules()))
	}
}
