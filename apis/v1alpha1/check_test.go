// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"slices"
	"strings"
	"testing"
)

func fp(v float64) *float64 { return &v }

func TestCheckValidate(t *testing.T) {
	ok := Check{TypeMeta: typeMeta(KindCheck), ObjectMeta: ObjectMeta{Name: "root"},
		Spec: CheckSpec{DiskUsage: &DiskUsageSource{Path: "/"}, Levels: []LevelRule{{Level: "sick", Above: fp(90)}, {Level: "soso", Below: fp(1)}}}}
	ok.Default()
	if errs := ok.Validate(); len(errs) > 0 {
		t.Fatal(errs)
	}
	if ok.Spec.DefaultLevel != "fine" || ok.Spec.Interval.Duration.String() != "1m0s" || ok.Spec.For != 1 {
		t.Fatalf("defaults: %+v", ok.Spec)
	}
	for name, mutate := range map[string]func(*CheckSpec){
		"two sources":       func(s *CheckSpec) { s.Uptime = &UptimeSource{} },
		"no source":         func(s *CheckSpec) { s.DiskUsage = nil },
		"relative path":     func(s *CheckSpec) { s.DiskUsage.Path = "var" },
		"unknown level":     func(s *CheckSpec) { s.Levels[0].Level = "ill" },
		"above and below":   func(s *CheckSpec) { s.Levels[0].Below = fp(3) },
		"no threshold":      func(s *CheckSpec) { s.Levels[0].Above = nil },
		"duplicate names":   func(s *CheckSpec) { s.LevelNames = []string{"ok", "ok"}; s.DefaultLevel = "ok"; s.Levels = nil },
		"bad default":       func(s *CheckSpec) { s.DefaultLevel = "great" },
		"for zero":          func(s *CheckSpec) { s.For = -1 },
		"bad jsonPath":      func(s *CheckSpec) { s.DiskUsage = nil; s.HTTP = &HTTPValueSource{URL: "http://x/", JSONPath: "{.a"} },
		"http needs a path": func(s *CheckSpec) { s.DiskUsage = nil; s.HTTP = &HTTPValueSource{URL: "http://x/"} },
		"bad match":         func(s *CheckSpec) { s.DiskUsage = nil; s.ProcessCount = &ProcessCountSource{Match: "("} },
		"load window":       func(s *CheckSpec) { s.DiskUsage = nil; s.Load = &LoadSource{Window: "2m"} },
	} {
		c := ok
		c.Spec.Levels = slices.Clone(ok.Spec.Levels)
		ds := *ok.Spec.DiskUsage
		c.Spec.DiskUsage = &ds
		mutate(&c.Spec)
		if errs := c.Validate(); len(errs) == 0 {
			t.Errorf("%s: valid", name)
		}
	}
}

func TestLevelOf(t *testing.T) {
	s := CheckSpec{DefaultLevel: "fine", Levels: []LevelRule{{Level: "dead", Above: fp(98)}, {Level: "sick", Above: fp(90)}, {Level: "soso", Below: fp(10)}}}
	for v, want := range map[float64]string{99: "dead 99 above 98", 91.3: "sick 91.3 above 90", 50: "fine 50 matches no rule", 5: "soso 5 below 10", 90: "fine 90 matches no rule"} {
		level, why := s.LevelOf(v)
		if level+" "+why != want {
			t.Errorf("%v: %s %s, want %s", v, level, why, want)
		}
	}
}

// Whatever the rules and the value, a valid Check gives one of its levels.
func FuzzCheckLevels(f *testing.F) {
	f.Add(90.0, 10.0, 95.0, "fine,soso,sick,critical,dead", "sick", "soso")
	f.Add(0.0, 0.0, -1.0, "up,down", "down", "up")
	f.Add(1e308, -1e308, 5e-324, "a,b", "b", "")
	f.Fuzz(func(t *testing.T, above, below, v float64, names, l1, l2 string) {
		c := Check{TypeMeta: typeMeta(KindCheck), ObjectMeta: ObjectMeta{Name: "c"},
			Spec: CheckSpec{Uptime: &UptimeSource{}, Levels: []LevelRule{{Level: l1, Above: &above}, {Level: l2, Below: &below}}}}
		if names != "" {
			c.Spec.LevelNames = strings.Split(names, ",")
		}
		c.Default()
		if len(c.Validate()) > 0 {
			return
		}
		if level, _ := c.Spec.LevelOf(v); c.Spec.Rank(level) < 0 {
			t.Fatalf("level %q is not one of %v", level, c.Spec.Names())
		}
	})
}
