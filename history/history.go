// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

// Package history keeps a measured value's past the way dmon showed it:
// rolled up into the last hour per minute, the last day per 10 minutes,
// the last week per hour, the last month per 4 hours and the last year per
// 2 days, each bucket with its minimum, mean, maximum and failed
// evaluations. A Series is bounded (735 buckets, about 24 KB in memory and
// 60 KB on disk) whatever its age.
//
// On disk a Series is a snapshot (written atomically and fsynced) and a
// log of the samples since it (one append per sample: it survives the
// process being killed; the log stays open, a descriptor per Series),
// folded into the snapshot every 60 samples and at Close, as kvlog does
// for maps. A snapshot that does not decode is set
// aside and the series starts empty; a torn last log line is skipped.
package history

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reconciled/reconciled/internal/atomicfile"
	"github.com/reconciled/reconciled/kvlog"
)

// Range is one roll-up: buckets of Step, Slots of them.
type Range struct {
	Name  string
	Step  time.Duration
	Slots int
}

// Ranges are dmon's roll-ups, shortest first.
var Ranges = []Range{
	{"hour", time.Minute, 60},
	{"day", 10 * time.Minute, 144},
	{"week", time.Hour, 168},
	{"month", 4 * time.Hour, 180},
	{"year", 48 * time.Hour, 183},
}

// RangeNames are the names of Ranges, for messages.
func RangeNames() []string {
	names := make([]string, len(Ranges))
	for i, r := range Ranges {
		names[i] = r.Name
	}
	return names
}

// compactEvery is how many logged samples trigger folding the log into the
// snapshot.
const compactEvery = 60

// bucket is one roll-up slot; T is its start (Unix seconds), 0 when empty.
// 32 bytes: the minimum and maximum keep 7 significant digits (float32),
// the sum (and so the mean) full precision.
type bucket struct {
	T    int64   `json:"t"`
	Sum  float64 `json:"sum,omitempty"`
	N    uint32  `json:"n,omitempty"`    // values
	Fail uint32  `json:"fail,omitempty"` // evaluations without a value
	Min  float32 `json:"min,omitempty"`
	Max  float32 `json:"max,omitempty"`
}

// Point is one bucket as served: its start, the minimum, mean and maximum
// of its values, how many there were and how many evaluations failed.
type Point struct {
	T        time.Time `json:"t"`
	Min      float64   `json:"min"`
	Mean     float64   `json:"mean"`
	Max      float64   `json:"max"`
	N        int       `json:"n"`
	Failures int       `json:"failures,omitempty"`
}

// snapshot is the file format.
type snapshot struct {
	Version int `json:"version"`
	// Last is the time (Unix nanoseconds) of the newest sample folded in:
	// log lines up to it are already counted (a crash between writing the
	// snapshot and emptying the log counts nothing twice).
	Last     int64               `json:"last"`
	Archives map[string][]bucket `json:"archives"`
}

// ErrCorrupt is wrapped by Open's error for a snapshot that does not
// decode; OpenOrSetAside sets such a file aside.
var ErrCorrupt = errors.New("corrupt history")

// Series is the rolled-up history of one value. It is safe for concurrent
// use.
type Series struct {
	path     string
	mu       sync.Mutex
	archives [][]bucket // parallel to Ranges
	last     int64      // Unix ns of the newest sample
	logged   int        // samples in the log
	log      *os.File   // the log, open for appending; nil until the first Add
	// OnError, when set, receives errors of appends and compactions (a
	// failed append only weakens durability).
	OnError func(error)
}

// Open loads the series at path (snapshot path, log path+".log"); missing
// files are an empty series.
func Open(path string) (*Series, error) {
	s := &Series{path: path, archives: make([][]bucket, len(Ranges))}
	for i, r := range Ranges {
		s.archives[i] = make([]bucket, r.Slots)
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, err
	default:
		var snap snapshot
		if err := json.Unmarshal(b, &snap); err != nil || snap.Version != 1 {
			if err == nil {
				err = fmt.Errorf("version %d", snap.Version)
			}
			return nil, fmt.Errorf("%s: %w: %v", path, ErrCorrupt, err)
		}
		s.last = snap.Last
		for i, r := range Ranges {
			for _, bk := range snap.Archives[r.Name] {
				if bk.T > 0 {
					slot := s.slot(i, time.Unix(bk.T, 0))
					s.archives[i][slot] = bk
				}
			}
		}
	}
	if err := s.replay(); err != nil {
		return nil, err
	}
	return s, nil
}

// OpenOrSetAside is Open, except that a corrupt snapshot is renamed to
// path+".corrupt" (its log too), setAside is told why, and the series
// starts empty.
func OpenOrSetAside(path string, setAside func(error)) (*Series, error) {
	return kvlog.SetAsideCorrupt(path, Open, ErrCorrupt, setAside)
}

// replay folds the log's samples newer than the snapshot in.
func (s *Series) replay() error {
	f, err := os.Open(s.path + ".log")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		t, v, ok, err := parseLine(sc.Text())
		if err != nil {
			continue // a torn line
		}
		s.logged++
		if t.UnixNano() > s.last {
			s.add(t, v, ok)
		}
	}
	return nil
}

// parseLine reads "<unix ns> <value>" or "<unix ns> !" (no value).
func parseLine(line string) (t time.Time, v float64, ok bool, err error) {
	ts, vs, found := strings.Cut(line, " ")
	if !found {
		return t, 0, false, errors.New("no value")
	}
	ns, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || ns <= 0 {
		return t, 0, false, errors.New("bad time")
	}
	if vs == "!" {
		return time.Unix(0, ns), 0, false, nil
	}
	v, err = strconv.ParseFloat(vs, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return t, 0, false, errors.New("bad value")
	}
	return time.Unix(0, ns), v, true, nil
}

// slot is where t goes in archive i.
func (s *Series) slot(i int, t time.Time) int {
	step := int64(Ranges[i].Step / time.Second)
	return int((t.Unix() / step) % int64(Ranges[i].Slots))
}

// add folds one sample into every archive.
func (s *Series) add(t time.Time, v float64, ok bool) {
	if t.Unix() <= 0 {
		return // before 1970: a clock not set
	}
	for i, r := range Ranges {
		step := int64(r.Step / time.Second)
		start := t.Unix() - t.Unix()%step
		bk := &s.archives[i][s.slot(i, t)]
		if bk.T != start {
			*bk = bucket{T: start}
		}
		if !ok {
			bk.Fail++
			continue
		}
		if f := float32(v); bk.N == 0 || f < bk.Min {
			bk.Min = f
		}
		if f := float32(v); bk.N == 0 || f > bk.Max {
			bk.Max = f
		}
		bk.N++
		bk.Sum += v
	}
	if ns := t.UnixNano(); ns > s.last {
		s.last = ns
	}
}

// Add records the value measured at t, or (ok false) an evaluation that
// got none. It is on disk (in the page cache) when Add returns.
func (s *Series) Add(t time.Time, v float64, ok bool) {
	line := strconv.FormatInt(t.UnixNano(), 10) + " !\n"
	if ok {
		line = strconv.FormatInt(t.UnixNano(), 10) + " " + strconv.FormatFloat(v, 'g', -1, 64) + "\n"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.add(t, v, ok)
	if err := s.appendLocked(line); err != nil {
		s.report(err)
	}
	s.logged++
	if s.logged >= compactEvery {
		if err := s.compactLocked(); err != nil {
			s.report(err)
		}
	}
}

// appendLocked appends line to the log in one write. The log stays open
// (opening it per sample was most of a sample's cost with 1,000 series):
// one descriptor per series.
func (s *Series) appendLocked(line string) error {
	if s.log == nil {
		f, err := os.OpenFile(s.path+".log", os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		s.log = f
	}
	_, err := s.log.WriteString(line)
	return err
}

// closeLogLocked closes the log's descriptor, if open.
func (s *Series) closeLogLocked() error {
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	s.log = nil
	return err
}

func (s *Series) report(err error) {
	if s.OnError != nil {
		s.OnError(err)
	}
}

// Compact folds the log into the snapshot.
func (s *Series) Compact() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.compactLocked()
}

func (s *Series) compactLocked() error {
	snap := snapshot{Version: 1, Last: s.last, Archives: map[string][]bucket{}}
	for i, r := range Ranges {
		var kept []bucket
		for _, bk := range s.archives[i] {
			if bk.T > 0 {
				kept = append(kept, bk)
			}
		}
		slices.SortFunc(kept, func(a, b bucket) int { return int(a.T - b.T) })
		snap.Archives[r.Name] = kept
	}
	b, err := json.Marshal(snap)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(s.path, b, 0o600); err != nil {
		return err
	}
	if err := os.Truncate(s.path+".log", 0); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	s.logged = 0
	return nil
}

// Close folds the log into the snapshot and closes it.
func (s *Series) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return errors.Join(s.compactLocked(), s.closeLogLocked())
}

// Remove deletes the series' files (its resource is gone).
func (s *Series) Remove() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closeLogLocked()
	err := os.Remove(s.path)
	if lerr := os.Remove(s.path + ".log"); err == nil || errors.Is(err, os.ErrNotExist) {
		err = lerr
	}
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return err
}

// LookupRange finds a range by name.
func LookupRange(name string) (Range, bool) {
	for _, r := range Ranges {
		if r.Name == name {
			return r, true
		}
	}
	return Range{}, false
}

// Points returns the buckets of the named range that fall in the span
// ending at now, oldest first.
func (s *Series) Points(rangeName string, now time.Time) ([]Point, error) {
	i := slices.IndexFunc(Ranges, func(r Range) bool { return r.Name == rangeName })
	if i < 0 {
		return nil, fmt.Errorf("unknown range %q (one of %s)", rangeName, strings.Join(RangeNames(), ", "))
	}
	r := Ranges[i]
	from := now.Add(-time.Duration(r.Slots) * r.Step).Unix()
	s.mu.Lock()
	defer s.mu.Unlock()
	points := []Point{}
	for _, bk := range s.archives[i] {
		if bk.T == 0 || bk.T <= from || bk.T > now.Unix() {
			continue
		}
		p := Point{T: time.Unix(bk.T, 0).UTC(), N: int(bk.N), Failures: int(bk.Fail), Min: float64(bk.Min), Max: float64(bk.Max)}
		if bk.N > 0 {
			p.Mean = bk.Sum / float64(bk.N)
		}
		points = append(points, p)
	}
	slices.SortFunc(points, func(a, b Point) int { return a.T.Compare(b.T) })
	return points, nil
}
