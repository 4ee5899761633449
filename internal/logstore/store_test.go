// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package logstore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/reconciled/reconciled/test/fixtures"
)

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// files lists the names in the program's log directory.
func files(t *testing.T, s *Store, kind, name string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Dir(s.Path(kind, name)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

func TestPathPrepareRemove(t *testing.T) {
	root := t.TempDir()
	s := &Store{Root: root}
	want := filepath.Join(root, "service", "web", "current.log")
	if got := s.Path("service", "web"); got != want {
		t.Errorf("Path = %q, want %q", got, want)
	}
	if _, err := os.Stat(filepath.Dir(want)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Path created something: %v", err)
	}
	got, err := s.Prepare("service", "web")
	if err != nil || got != want {
		t.Fatalf("Prepare = %q, %v; want %q", got, err, want)
	}
	fi, err := os.Stat(filepath.Dir(want))
	if err != nil || !fi.IsDir() || fi.Mode().Perm()&^0o750 != 0 {
		t.Fatalf("log directory: %v, %v; want a directory with mode at most 0750", fi, err)
	}

	f, err := s.Open("service", "web")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("hello\n")
	f.Close()
	writeFile(t, want+".1", "old\n")
	if err := s.Remove("service", "web"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(want)); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("log directory still exists after Remove: %v", err)
	}
	if err := s.Remove("service", "web"); err != nil {
		t.Errorf("second Remove: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "service")); err != nil {
		t.Errorf("Remove deleted the kind directory: %v", err)
	}
}

func TestInvalidNames(t *testing.T) {
	root := t.TempDir()
	s := &Store{Root: root}
	for _, kn := range [][2]string{{"", "web"}, {"service", ""}, {"..", "web"}, {"service", ".."}, {"service", "."}, {"a/b", "web"}, {"service", "../../etc"}, {"service", "x\x00"}} {
		if _, err := s.Prepare(kn[0], kn[1]); err == nil {
			t.Errorf("Prepare(%q, %q) succeeded", kn[0], kn[1])
		}
		if _, err := s.Rotate(kn[0], kn[1]); err == nil {
			t.Errorf("Rotate(%q, %q) succeeded", kn[0], kn[1])
		}
		if err := s.Remove(kn[0], kn[1]); err == nil {
			t.Errorf("Remove(%q, %q) succeeded", kn[0], kn[1])
		}
	}
	if _, err := (&Store{}).Prepare("service", "web"); err == nil {
		t.Error("Prepare without Root succeeded")
	}
	if _, err := os.Stat(root); err != nil {
		t.Fatalf("root was removed: %v", err)
	}
}

func TestRotateThresholdAndAppendWriter(t *testing.T) {
	s := &Store{Root: t.TempDir(), MaxBytes: 50, Keep: 2}
	if rotated, err := s.Rotate("service", "web"); err != nil || rotated {
		t.Fatalf("Rotate of a missing log = %v, %v; want false, nil", rotated, err)
	}
	f, err := s.Open("service", "web")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := s.Path("service", "web")

	first := strings.Repeat("0123456789\n", 4) // 44 bytes <= MaxBytes
	f.WriteString(first)
	if rotated, err := s.Rotate("service", "web"); err != nil || rotated {
		t.Fatalf("Rotate below MaxBytes = %v, %v; want false, nil", rotated, err)
	}
	more := strings.Repeat("abcdefghij\n", 5) // 99 bytes: over MaxBytes, under twice it
	f.WriteString(more)
	if rotated, err := s.Rotate("service", "web"); err != nil || !rotated {
		t.Fatalf("Rotate above MaxBytes = %v, %v; want true, nil", rotated, err)
	}
	if got := readFile(t, path+".1"); got != first+more {
		t.Errorf("current.log.1 = %q, want %q", got, first+more)
	}
	if got := readFile(t, path); got != "" {
		t.Errorf("current.log after rotation = %q, want empty", got)
	}
	// The O_APPEND writer continues at offset 0, not at its old offset.
	f.WriteString("x\n")
	if got := readFile(t, path); got != "x\n" {
		t.Errorf("current.log after a write = %q, want %q", got, "x\n")
	}
	if diff := cmp.Diff([]string{"current.log", "current.log.1"}, files(t, s, "service", "web")); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

func TestRotateKeep(t *testing.T) {
	for _, keep := range []int{1, 2, 3} {
		t.Run(fmt.Sprint("keep=", keep), func(t *testing.T) {
			s := &Store{Root: t.TempDir(), MaxBytes: 20, Keep: keep}
			path, err := s.Prepare("job", "backup")
			if err != nil {
				t.Fatal(err)
			}
			// Leftovers of a larger Keep, and unrelated names, are handled.
			writeFile(t, path+".7", "stale\n")
			writeFile(t, path+".01", "not a rotation\n")
			const generations = 5
			for g := 1; g <= generations; g++ {
				appendFile(t, path, fmt.Sprintf("generation %d, long enough\n", g))
				if rotated, err := s.Rotate("job", "backup"); err != nil || !rotated {
					t.Fatalf("Rotate %d = %v, %v", g, rotated, err)
				}
			}
			want := []string{"current.log", "current.log.01"}
			for i := 1; i <= keep; i++ {
				want = append(want, fmt.Sprintf("current.log.%d", i))
				if got, w := readFile(t, fmt.Sprintf("%s.%d", path, i)), fmt.Sprintf("generation %d, long enough\n", generations+1-i); got != w {
					t.Errorf("current.log.%d = %q, want %q", i, got, w)
				}
			}
			slices.Sort(want)
			if diff := cmp.Diff(want, files(t, s, "job", "backup")); diff != "" {
				t.Errorf("files (-want +got):\n%s", diff)
			}
		})
	}
}

// A file found over twice MaxBytes was flooded: only its last MaxBytes are
// kept, after a line that says how much was dropped.
func TestRotateFloodKeepsTheTail(t *testing.T) {
	s := &Store{Root: t.TempDir(), MaxBytes: 20, Keep: 1}
	path, err := s.Prepare("process", "flood")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, strings.Repeat("old line\n", 10)+"the last 20 bytes..\n")
	if rotated, err := s.Rotate("process", "flood"); err != nil || !rotated {
		t.Fatalf("Rotate = %v, %v", rotated, err)
	}
	want := "[reconciled: 90 bytes before this line were dropped: the program wrote faster than its log is rotated]\nthe last 20 bytes..\n"
	if got := readFile(t, path+".1"); got != want {
		t.Fatalf("current.log.1 = %q, want %q", got, want)
	}
	if got := readFile(t, path); got != "" {
		t.Fatalf("current.log = %q, want empty", got)
	}
}

func TestRotateDefaults(t *testing.T) {
	s := &Store{Root: t.TempDir()}
	path, err := s.Prepare("service", "web")
	if err != nil {
		t.Fatal(err)
	}
	// Just above the default threshold, as a sparse file.
	if err := os.WriteFile(path, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, DefaultMaxBytes); err != nil {
		t.Fatal(err)
	}
	if rotated, err := s.Rotate("service", "web"); err != nil || rotated {
		t.Fatalf("Rotate at exactly DefaultMaxBytes = %v, %v; want false", rotated, err)
	}
	for i := range DefaultKeep + 2 {
		if err := os.Truncate(path, DefaultMaxBytes+1); err != nil {
			t.Fatal(err)
		}
		if rotated, err := s.Rotate("service", "web"); err != nil || !rotated {
			t.Fatalf("Rotate %d above DefaultMaxBytes = %v, %v; want true", i, rotated, err)
		}
	}
	want := []string{"current.log"}
	for i := 1; i <= DefaultKeep; i++ {
		want = append(want, fmt.Sprintf("current.log.%d", i))
	}
	if diff := cmp.Diff(want, files(t, s, "service", "web")); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
}

// TestRotateRealWriter rotates the log of a real child process writing as
// fast as it can to a file it inherited as stdout.
func TestRotateRealWriter(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		fixtures.SkipOrFail(t, "sh not installed")
	}
	const maxBytes = 64 << 10
	s := &Store{Root: t.TempDir(), MaxBytes: maxBytes, Keep: 2}
	f, err := s.Open("service", "chatty")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(sh, "-c", "while :; do echo line; done")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close() // the child owns its copy, as with the daemon
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	path := s.Path("service", "chatty")

	rotations := 0
	waitFor(t, "three rotations", func() bool {
		rotated, err := s.Rotate("service", "chatty")
		if err != nil {
			t.Fatal(err)
		}
		if rotated {
			rotations++
			fi, err := os.Stat(path + ".1")
			if err != nil || fi.Size() <= maxBytes {
				t.Fatalf("current.log.1 after rotation: %v, %v; want more than %d bytes", fi, err, maxBytes)
			}
		}
		return rotations == 3
	})

	// The child keeps writing, from the start of the truncated file.
	waitFor(t, "the child to write again", func() bool {
		fi, err := os.Stat(path)
		return err == nil && fi.Size() >= 5
	})
	head := make([]byte, 5)
	r, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = r.ReadAt(head, 0)
	r.Close()
	if err != nil || string(head) != "line\n" {
		t.Fatalf("start of current.log after rotation = %q, %v; want %q (no hole)", head, err, "line\n")
	}

	cmd.Process.Kill()
	cmd.Wait()
	for _, name := range files(t, s, "service", "chatty") {
		if name != "current.log" && name != "current.log.1" && name != "current.log.2" {
			t.Errorf("unexpected file %s with Keep=2", name)
		}
		b := []byte(readFile(t, filepath.Join(filepath.Dir(path), name)))
		if bytes.HasPrefix(b, []byte("[reconciled: ")) {
			// Rotated late, beyond twice the bound: the head was dropped,
			// and what is kept starts at a line.
			b = b[bytes.IndexByte(b, '\n')+1:]
		}
		if len(b) > 0 && (bytes.IndexByte(b, 0) >= 0 || !bytes.HasPrefix(b, []byte("line\n"))) {
			t.Errorf("%s does not hold whole lines from its start", name)
		}
	}
	// Rotating the stopped program's log leaves an empty current.log.
	if rotated, err := s.Rotate("service", "chatty"); err != nil {
		t.Fatal(err)
	} else if fi, _ := os.Stat(path); rotated && fi.Size() != 0 {
		t.Errorf("current.log has %d bytes after the final rotation", fi.Size())
	}
}

// A rotation whose copy fails (typically on a full disk) shifts and prunes
// nothing, and empties the log rather than let it grow without bound,
// with a line saying so.
func TestRotateCopyFails(t *testing.T) {
	s := &Store{Root: t.TempDir(), MaxBytes: 10, Keep: 2}
	path, err := s.Prepare("process", "full")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path+".1", "older\n")
	writeFile(t, path, "a line that is over the bound\n")
	// The temporary copy cannot be created: a folder is in its place.
	if err := os.Mkdir(filepath.Join(filepath.Dir(path), rotatingTmp), 0o755); err != nil {
		t.Fatal(err)
	}
	rotated, err := s.Rotate("process", "full")
	if err == nil || !rotated || !strings.Contains(err.Error(), "emptied") {
		t.Fatalf("Rotate = %v, %v; want true and an error saying the log was emptied", rotated, err)
	}
	if got := readFile(t, path); !strings.HasPrefix(got, "[reconciled: 30 bytes of this log were dropped: it could not be rotated: ") {
		t.Fatalf("current.log = %q", got)
	}
	if got := readFile(t, path+".1"); got != "older\n" {
		t.Fatalf("current.log.1 = %q: rotated files must stay as they were", got)
	}
	if _, err := os.Stat(path + ".2"); err == nil {
		t.Fatal("current.log.2 appeared: nothing may be shifted when the copy failed")
	}
}
