// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package history

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// A year of one sample per minute (simulated clock): every range has its
// buckets with the right min, mean and max; failures are counted; the
// files stay small.
func TestRollUp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := t0
	for i := range 366 * 24 * 60 {
		now = t0.Add(time.Duration(i) * time.Minute)
		// In memory (Add's disk round trip is TestRestart's): 527,040
		// samples.
		if i%60 == 59 {
			s.add(now, 0, false) // one failed evaluation an hour
			continue
		}
		s.add(now, float64(i%60), true) // 0..58 within each hour
	}
	hour, _ := s.Points("hour", now)
	if len(hour) != 60 {
		t.Fatalf("hour: %d points", len(hour))
	}
	week, _ := s.Points("week", now)
	if len(week) != 168 {
		t.Fatalf("week: %d points", len(week))
	}
	for _, p := range week {
		if p.Min != 0 || p.Max != 58 || p.Mean != 29 || p.N != 59 || p.Failures != 1 {
			t.Fatalf("an hour bucket: %+v", p)
		}
	}
	for _, r := range Ranges {
		ps, err := s.Points(r.Name, now)
		if err != nil || len(ps) < r.Slots-1 || len(ps) > r.Slots {
			t.Fatalf("%s: %d points (%v), want about %d", r.Name, len(ps), err, r.Slots)
		}
		if !ps[len(ps)-1].T.After(now.Add(-r.Step)) || ps[0].T.Before(now.Add(-time.Duration(r.Slots)*r.Step)) {
			t.Fatalf("%s: from %s to %s", r.Name, ps[0].T, ps[len(ps)-1].T)
		}
	}
	if _, err := s.Points("decade", now); err == nil || !strings.Contains(err.Error(), "hour, day") {
		t.Fatalf("unknown range: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if fi.Size() > 200<<10 {
		t.Fatalf("snapshot %d bytes", fi.Size())
	}
	t.Logf("a year of minutes: snapshot %d bytes", fi.Size())
}

// A restart keeps everything, also what was only in the log; a crash after
// the snapshot but before the log was emptied counts nothing twice; a
// torn last line is skipped.
func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	s, _ := Open(path)
	for i := range 10 {
		s.Add(t0.Add(time.Duration(i)*time.Minute), 1, true)
	}
	// No Close: a kill. The samples are in the log.
	s2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(10 * time.Minute)
	if ps, _ := s2.Points("day", now); len(ps) != 1 || ps[0].N != 10 {
		t.Fatalf("after a kill: %+v", ps)
	}
	// Snapshot written, log kept (a crash in between).
	log, _ := os.ReadFile(path + ".log")
	if err := s2.Compact(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path+".log", append(log, "123"...), 0o600) // and a torn line
	s3, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if ps, _ := s3.Points("day", now); len(ps) != 1 || ps[0].N != 10 || ps[0].Mean != 1 {
		t.Fatalf("after a crash between snapshot and log: %+v", ps)
	}
	if err := s3.Remove(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Remove left the snapshot")
	}
}

// A corrupt snapshot is set aside: the series starts empty and says why.
func TestCorruptSetAside(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c")
	os.WriteFile(path, []byte("{not json"), 0o600)
	var why error
	s, err := OpenOrSetAside(path, func(err error) { why = err })
	if err != nil || why == nil || !errors.Is(why, ErrCorrupt) {
		t.Fatalf("open: %v, set aside: %v", err, why)
	}
	if _, err := os.Stat(path + ".corrupt"); err != nil {
		t.Fatal("not set aside")
	}
	s.Add(t0, 5, true)
	if ps, _ := s.Points("hour", t0.Add(time.Second)); len(ps) != 1 {
		t.Fatalf("points %+v", ps)
	}
}

func FuzzOpen(f *testing.F) {
	f.Add([]byte(`{"version":1,"last":5,"archives":{"hour":[{"t":60,"n":1,"min":1,"max":1,"sum":1}]}}`), []byte("120000000000 3\n180000000000 !\n"))
	f.Add([]byte(`{"version":2}`), []byte(""))
	f.Add([]byte(`{"version":1,"archives":{"year":[{"t":-5}]}}`), []byte("x y\n-1 2\n5 NaN\n"))
	f.Fuzz(func(t *testing.T, snap, log []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, "c")
		os.WriteFile(path, snap, 0o600)
		os.WriteFile(path+".log", log, 0o600)
		s, err := Open(path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("not a corrupt-file error: %v", err)
			}
			return
		}
		for _, r := range Ranges {
			if ps, err := s.Points(r.Name, time.Now()); err != nil || len(ps) > r.Slots {
				t.Fatalf("%s: %d points, %v", r.Name, len(ps), err)
			}
		}
	})
}
