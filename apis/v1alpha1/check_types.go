// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/util/jsonpath"
)

// DefaultLevelNames are dmon's fitness levels, best first.
var DefaultLevelNames = []string{"fine", "soso", "sick", "critical", "dead"}

// CheckUnknown is the level of a Check whose value could not be had (the
// reason is in the Ready condition); it is never taken for a good level.
const CheckUnknown = "Unknown"

// Check measures a value every interval and maps it to a fitness level.
type Check struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       CheckSpec   `json:"spec"`
	Status     CheckStatus `json:"status,omitempty"`
}

// CheckSpec holds exactly one source of the value, the fitness function
// (levels) and the timing.
type CheckSpec struct {
	DiskUsage    *DiskUsageSource    `json:"diskUsage,omitempty"`
	Load         *LoadSource         `json:"load,omitempty"`
	Memory       *MemorySource       `json:"memory,omitempty"`
	Uptime       *UptimeSource       `json:"uptime,omitempty"`
	FileAge      *FileAgeSource      `json:"fileAge,omitempty"`
	ProcessCount *ProcessCountSource `json:"processCount,omitempty"`
	Exec         *ExecCheck          `json:"exec,omitempty"`
	HTTP         *HTTPValueSource    `json:"http,omitempty"`
	// Interval between evaluations (default 1m).
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Timeout of one evaluation (default 10s, at most Interval).
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// Levels is the fitness function: the first rule that matches the
	// value gives the level; none matching gives DefaultLevel.
	Levels []LevelRule `json:"levels,omitempty"`
	// DefaultLevel is the level when no rule matches (default the best of
	// LevelNames).
	DefaultLevel string `json:"defaultLevel,omitempty"`
	// LevelNames are the levels, best first (default fine, soso, sick,
	// critical, dead).
	LevelNames []string `json:"levelNames,omitempty"`
	// For is how many evaluations in a row must call for a level before
	// it is taken (hysteresis; default 1).
	For int32 `json:"for,omitempty"`
}

// DiskUsageSource is the percentage of a file system's space (or inodes)
// in use, as df shows it.
type DiskUsageSource struct {
	Path   string `json:"path"`
	Inodes bool   `json:"inodes,omitempty"`
}

// LoadSource is the load average over Window (1m, 5m or 15m) divided by
// the number of CPUs.
type LoadSource struct {
	Window string `json:"window,omitempty"`
}

// MemorySource is the percentage of memory in use (MemTotal less
// MemAvailable).
type MemorySource struct{}

// UptimeSource is the seconds since the machine booted.
type UptimeSource struct{}

// FileAgeSource is the seconds since Path was last modified.
type FileAgeSource struct {
	Path string `json:"path"`
}

// ProcessCountSource counts running processes: those whose command line
// matches the regular expression Match, or the running main process of the
// Process resource named Process (0 or 1).
type ProcessCountSource struct {
	Match   string `json:"match,omitempty"`
	Process string `json:"process,omitempty"`
}

// HTTPValueSource fetches URL and takes a number from the answer: the
// JSONPath (kubectl syntax) of a JSON answer, or the sample of Metric in a
// Prometheus text answer (the first, or the one with every label in
// Labels).
type HTTPValueSource struct {
	URL      string            `json:"url"`
	JSONPath string            `json:"jsonPath,omitempty"`
	Metric   string            `json:"metric,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
}

// LevelRule gives Level to a value above (or below) a threshold.
type LevelRule struct {
	Level string   `json:"level"`
	Above *float64 `json:"above,omitempty"`
	Below *float64 `json:"below,omitempty"`
}

// CheckStatus is the level taken and how it came about. The file's status
// changes with the level; the value and time of every evaluation are laid
// over it when the API serves it.
type CheckStatus struct {
	CommonStatus `json:",inline"`
	// Level is the level taken (Unknown while the value cannot be had).
	Level string `json:"level,omitempty"`
	// PreviousLevel is the level before Level.
	PreviousLevel string `json:"previousLevel,omitempty"`
	// Value is the last value measured.
	Value *float64 `json:"value,omitempty"`
	// Since is when Level was taken.
	Since *metav1.Time `json:"since,omitempty"`
	// LastEvaluated is when Value was measured.
	LastEvaluated *metav1.Time `json:"lastEvaluated,omitempty"`
}

// Names returns the Check's level names, best first.
func (s *CheckSpec) Names() []string {
	if len(s.LevelNames) > 0 {
		return s.LevelNames
	}
	return DefaultLevelNames
}

// Rank is the position of level among the Check's levels (0 = best); -1
// for Unknown or a name it does not have.
func (s *CheckSpec) Rank(level string) int { return slices.Index(s.Names(), level) }

// LevelOf applies the fitness function to a value: the level of the first
// rule it matches, else DefaultLevel, and why ("91.3 above 90").
func (s *CheckSpec) LevelOf(v float64) (level, why string) {
	for _, r := range s.Levels {
		switch {
		case r.Above != nil && v > *r.Above:
			return r.Level, fmt.Sprintf("%s above %s", FormatValue(v), FormatValue(*r.Above))
		case r.Below != nil && v < *r.Below:
			return r.Level, fmt.Sprintf("%s below %s", FormatValue(v), FormatValue(*r.Below))
		}
	}
	return s.DefaultLevel, fmt.Sprintf("%s matches no rule", FormatValue(v))
}

// FormatValue prints a measured value the short way (91.3, 12, 0.05).
func FormatValue(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case v == math.Trunc(v) && math.Abs(v) < 1e15:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.1f", v)
	default:
		return strings.TrimRight(strings.TrimRight(fmt.Sprintf("%.3f", v), "0"), ".")
	}
}

// Default fills in the documented defaults.
func (c *Check) Default() {
	s := &c.Spec
	defaultDuration(&s.Interval, time.Minute)
	if s.Timeout == nil {
		s.Timeout = duration(min(10*time.Second, s.Interval.Duration))
	}
	if s.DefaultLevel == "" {
		s.DefaultLevel = s.Names()[0]
	}
	if s.For == 0 {
		s.For = 1
	}
	if s.Load != nil && s.Load.Window == "" {
		s.Load.Window = "1m"
	}
}

var levelName = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Validate checks a defaulted Check.
func (c *Check) Validate() field.ErrorList {
	errs := validateMeta(&c.TypeMeta, &c.ObjectMeta)
	s := &c.Spec
	sp := field.NewPath("spec")
	errs = append(errs, exactlyOne(sp, map[string]bool{"diskUsage": s.DiskUsage != nil, "load": s.Load != nil, "memory": s.Memory != nil,
		"uptime": s.Uptime != nil, "fileAge": s.FileAge != nil, "processCount": s.ProcessCount != nil, "exec": s.Exec != nil, "http": s.HTTP != nil})...)
	if s.DiskUsage != nil {
		errs = append(errs, validateRequiredAbsPath(s.DiskUsage.Path, sp.Child("diskUsage", "path"))...)
	}
	if s.Load != nil {
		errs = append(errs, oneOf(s.Load.Window, sp.Child("load", "window"), "1m", "5m", "15m")...)
	}
	if s.FileAge != nil {
		errs = append(errs, validateRequiredAbsPath(s.FileAge.Path, sp.Child("fileAge", "path"))...)
	}
	if pc := s.ProcessCount; pc != nil {
		pp := sp.Child("processCount")
		errs = append(errs, exactlyOne(pp, map[string]bool{"match": pc.Match != "", "process": pc.Process != ""})...)
		if pc.Match != "" {
			if _, err := regexp.Compile(pc.Match); err != nil {
				errs = append(errs, field.Invalid(pp.Child("match"), pc.Match, err.Error()))
			}
		}
	}
	if s.Exec != nil {
		errs = append(errs, validateArgv(s.Exec.Command, sp.Child("exec", "command"))...)
	}
	if h := s.HTTP; h != nil {
		hp := sp.Child("http")
		errs = append(errs, validateURL(h.URL, hp.Child("url"), "http", "https")...)
		errs = append(errs, exactlyOne(hp, map[string]bool{"jsonPath": h.JSONPath != "", "metric": h.Metric != ""})...)
		if h.JSONPath != "" {
			if err := jsonpath.New("value").Parse(h.JSONPath); err != nil {
				errs = append(errs, field.Invalid(hp.Child("jsonPath"), h.JSONPath, err.Error()))
			}
		}
	}
	errs = append(errs, validatePositive(s.Interval, sp.Child("interval"))...)
	errs = append(errs, validatePositive(s.Timeout, sp.Child("timeout"))...)
	if s.Interval != nil && s.Timeout != nil && s.Timeout.Duration > s.Interval.Duration {
		errs = append(errs, field.Invalid(sp.Child("timeout"), s.Timeout.Duration.String(), "must not exceed interval"))
	}
	errs = append(errs, validateLevels(s, sp)...)
	if s.For < 1 {
		errs = append(errs, field.Invalid(sp.Child("for"), s.For, "must be at least 1"))
	}
	return errs
}

// validateLevels checks the level names and the fitness function.
func validateLevels(s *CheckSpec, sp *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := s.Names()
	for i, n := range s.LevelNames {
		switch {
		case !levelName.MatchString(n):
			errs = append(errs, field.Invalid(sp.Child("levelNames").Index(i), n, "a level is lower-case letters, digits, - and _ (at most 32)"))
		case slices.Index(s.LevelNames, n) != i:
			errs = append(errs, field.Duplicate(sp.Child("levelNames").Index(i), n))
		}
	}
	if len(s.LevelNames) == 1 {
		errs = append(errs, field.Invalid(sp.Child("levelNames"), s.LevelNames, "at least two levels"))
	}
	errs = append(errs, oneOf(s.DefaultLevel, sp.Child("defaultLevel"), names...)...)
	for i, r := range s.Levels {
		rp := sp.Child("levels").Index(i)
		errs = append(errs, oneOf(r.Level, rp.Child("level"), names...)...)
		errs = append(errs, exactlyOne(rp, map[string]bool{"above": r.Above != nil, "below": r.Below != nil})...)
		for _, t := range []*float64{r.Above, r.Below} {
			if t != nil && (math.IsNaN(*t) || math.IsInf(*t, 0)) {
				errs = append(errs, field.Invalid(rp, *t, "a threshold is a finite number"))
			}
		}
	}
	return errs
}

// validateRequiredAbsPath requires an absolute path.
func validateRequiredAbsPath(s string, p *field.Path) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, "an absolute path")}
	}
	return validateAbsPath(s, p)
}

// GetTypeMeta implements Object.
func (c *Check) GetTypeMeta() *TypeMeta { return &c.TypeMeta }

// GetObjectMeta implements Object.
func (c *Check) GetObjectMeta() *ObjectMeta { return &c.ObjectMeta }

// GetCommonStatus implements Object.
func (c *Check) GetCommonStatus() *CommonStatus { return &c.Status.CommonStatus }

// GetSpec implements Object.
func (c *Check) GetSpec() any { return &c.Spec }

// GetStatus implements Object.
func (c *Check) GetStatus() any { return &c.Status }

// WithStatus implements Object.
func (c *Check) WithStatus(status any) Object {
	cc := *c
	cc.Status = status.(CheckStatus)
	return &cc
}
