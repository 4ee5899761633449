// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Module phases, after systemd's ActiveState.
const (
	ModuleActive       = "Active"
	ModuleActivating   = "Activating"
	ModuleInactive     = "Inactive"
	ModuleFailed       = "Failed"
	ModuleDeactivating = "Deactivating"
)

// Module is a systemd unit generated from the resource.
type Module struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       ModuleSpec   `json:"spec"`
	Status     ModuleStatus `json:"status,omitempty"`
}

// ModuleSpec describes the unit.
type ModuleSpec struct {
	Description      string            `json:"description,omitempty"`
	Exec             []string          `json:"exec"`
	WorkingDirectory string            `json:"workingDirectory,omitempty"`
	User             string            `json:"user,omitempty"`
	Environment      map[string]string `json:"environment,omitempty"`
	// Type is systemd's Type= (simple, exec, notify, oneshot, forking; default simple).
	Type string `json:"type,omitempty"`
	// Restart is systemd's Restart= (default on-failure).
	Restart    string           `json:"restart,omitempty"`
	RestartSec *metav1.Duration `json:"restartSec,omitempty"`
	After      []string         `json:"after,omitempty"`
	// Extra passes any other directive through, per section.
	Extra map[string]map[string]DirectiveValue `json:"extra,omitempty"`
	// State is Running (default) or Stopped.
	State string `json:"state,omitempty"`
	// Enabled starts the unit at boot (default true).
	Enabled *bool `json:"enabled,omitempty"`
	// Scope is system (default) or user.
	Scope string `json:"scope,omitempty"`
	// UnitName defaults to <name>.service.
	UnitName string `json:"unitName,omitempty"`
}

// DirectiveValue is one or more values of a unit directive; YAML strings,
// numbers and booleans are accepted, and a list repeats the directive.
type DirectiveValue []string

// UnmarshalJSON accepts a scalar or a list of scalars.
func (d *DirectiveValue) UnmarshalJSON(b []byte) error {
	var list []json.RawMessage
	if err := json.Unmarshal(b, &list); err != nil {
		list = []json.RawMessage{b}
	}
	out := make(DirectiveValue, 0, len(list))
	for _, raw := range list {
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return err
		}
		switch t := v.(type) {
		case string:
			out = append(out, t)
		case float64:
			out = append(out, strconv.FormatFloat(t, 'f', -1, 64))
		case bool:
			out = append(out, map[bool]string{true: "yes", false: "no"}[t])
		default:
			return fmt.Errorf("a directive value must be a string, number, boolean or a list of them")
		}
	}
	*d = out
	return nil
}

// ModuleStatus mirrors the unit's live state from D-Bus.
type ModuleStatus struct {
	CommonStatus `json:",inline"`
	UnitFile     string       `json:"unitFile,omitempty"`
	LoadState    string       `json:"loadState,omitempty"`
	ActiveState  string       `json:"activeState,omitempty"`
	SubState     string       `json:"subState,omitempty"`
	MainPID      int          `json:"mainPID,omitempty"`
	NRestarts    int64        `json:"nRestarts,omitempty"`
	Result       string       `json:"result,omitempty"`
	Since        *metav1.Time `json:"since,omitempty"`
}

var (
	// unitNameRE is a service unit name that can be started itself (not a
	// template like foo@.service).
	unitNameRE  = regexp.MustCompile(`^[a-zA-Z0-9:_.-][a-zA-Z0-9:_.@-]*\.service$`)
	directiveRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// nameTakingDirectives are the [Install] directives that make
	// systemctl enable create or enable units under other names.
	nameTakingDirectives = map[string]bool{"Alias": true, "Also": true, "DefaultInstance": true}
	extraSectionRE       = regexp.MustCompile(`^(Unit|Service|Install|X-[A-Za-z0-9_-]+)$`)
	unitEnvNameRE        = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// afterRE is any unit name, escaped names (\x2d) included.
	afterRE = regexp.MustCompile(`^[a-zA-Z0-9:_.@\\-]+\.[a-z]+$`)
)

// unitLine reports why s cannot be a one-line unit file value, or "".
func unitLine(s string) string {
	switch {
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexFunc(s, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }) >= 0:
		return "must be a single line without control characters"
	case strings.HasSuffix(strings.TrimSpace(s), "\\"):
		return "must not end in a backslash (systemd would continue the line)"
	}
	return ""
}

// Default fills in the documented defaults.
func (m *Module) Default() {
	s := &m.Spec
	if s.Type == "" {
		s.Type = "simple"
	}
	if s.Restart == "" {
		s.Restart = "on-failure"
	}
	if s.State == "" {
		s.State = "Running"
	}
	if s.Enabled == nil {
		t := true
		s.Enabled = &t
	}
	if s.Scope == "" {
		s.Scope = "system"
	}
	if s.UnitName == "" && m.Name != "" {
		s.UnitName = m.Name + ".service"
	}
}

// Validate checks a defaulted Module.
func (m *Module) Validate() field.ErrorList {
	errs := validateMeta(&m.TypeMeta, &m.ObjectMeta)
	s := &m.Spec
	sp := field.NewPath("spec")
	errs = append(errs, validateArgv(s.Exec, sp.Child("exec"))...)
	if len(s.Exec) > 0 && s.Exec[0] != "" {
		if prog := s.Exec[0]; strings.Contains(prog, "/") && !strings.HasPrefix(prog, "/") {
			errs = append(errs, field.Invalid(sp.Child("exec").Index(0), prog, "must be an absolute path or a bare program name (systemd refuses relative paths)"))
		} else if strings.ContainsAny(prog, "\"'\\$") || strings.ContainsAny(prog[:1], "-@:+!|") {
			errs = append(errs, field.Invalid(sp.Child("exec").Index(0), prog, "must not contain quotes, backslashes or $, nor start with one of -@:+!|"))
		}
	}
	for k, v := range s.Environment {
		if !unitEnvNameRE.MatchString(k) {
			errs = append(errs, field.Invalid(sp.Child("environment").Key(k), k, "systemd takes only names like [A-Za-z_][A-Za-z0-9_]*"))
		} else if !utf8.ValidString(v) {
			errs = append(errs, field.Invalid(sp.Child("environment").Key(k), v, "must be valid UTF-8"))
		}
	}
	for _, f := range []struct{ name, v string }{{"description", s.Description}, {"user", s.User}} {
		if msg := unitLine(f.v); msg != "" {
			errs = append(errs, field.Invalid(sp.Child(f.name), f.v, msg))
		}
	}
	for i, a := range s.After {
		if !afterRE.MatchString(a) {
			errs = append(errs, field.Invalid(sp.Child("after").Index(i), a, "not a unit name"))
		}
	}
	errs = append(errs, validateAbsPath(s.WorkingDirectory, sp.Child("workingDirectory"))...)
	errs = append(errs, validateEnvKeys(s.Environment, sp.Child("environment"))...)
	errs = append(errs, oneOf(s.Type, sp.Child("type"), "simple", "exec", "notify", "oneshot", "forking")...)
	errs = append(errs, oneOf(s.Restart, sp.Child("restart"), "no", "on-success", "on-failure", "on-abnormal", "on-watchdog", "on-abort", "always")...)
	errs = append(errs, validatePositive(s.RestartSec, sp.Child("restartSec"))...)
	if s.Type == "oneshot" && (s.Restart == "always" || s.Restart == "on-success") {
		errs = append(errs, field.Invalid(sp.Child("restart"), s.Restart, "systemd refuses Restart=always and on-success for Type=oneshot"))
	}
	errs = append(errs, oneOf(s.State, sp.Child("state"), "Running", "Stopped")...)
	errs = append(errs, oneOf(s.Scope, sp.Child("scope"), "system", "user")...)
	if !unitNameRE.MatchString(s.UnitName) || strings.HasSuffix(s.UnitName, "@.service") || len(s.UnitName) > 255 {
		errs = append(errs, field.Invalid(sp.Child("unitName"), s.UnitName, "must use only [a-zA-Z0-9:_.@-], not start with @, end in .service (not a template like x@.service) and be at most 255 bytes"))
	}
	for sec, dirs := range s.Extra {
		if !extraSectionRE.MatchString(sec) {
			errs = append(errs, field.NotSupported(sp.Child("extra").Key(sec), sec, []string{"Unit", "Service", "Install", "X-..."}))
		}
		for k, vals := range dirs {
			if !directiveRE.MatchString(k) {
				errs = append(errs, field.Invalid(sp.Child("extra").Key(sec).Key(k), k, "not a directive name ([A-Za-z0-9_-]+)"))
			}
			if sec == "Install" && nameTakingDirectives[k] {
				// These make enable create links under other unit names,
				// which would take over units reconciled did not write.
				errs = append(errs, field.Forbidden(sp.Child("extra").Key(sec).Key(k), k+"= names other units (enabling would link them to this one); reconciled manages only the unit it writes"))
			}
			for _, v := range vals {
				if msg := unitLine(v); msg != "" {
					errs = append(errs, field.Invalid(sp.Child("extra").Key(sec).Key(k), v, msg))
				}
			}
		}
	}
	return errs
}

// oneOf requires s to be one of allowed.
func oneOf(s string, p *field.Path, allowed ...string) field.ErrorList {
	for _, a := range allowed {
		if s == a {
			return nil
		}
	}
	return field.ErrorList{field.NotSupported(p, s, allowed)}
}

// GetTypeMeta implements Object.
func (m *Module) GetTypeMeta() *TypeMeta { return &m.TypeMeta }

// GetObjectMeta implements Object.
func (m *Module) GetObjectMeta() *ObjectMeta { return &m.ObjectMeta }

// GetCommonStatus implements Object.
func (m *Module) GetCommonStatus() *CommonStatus { return &m.Status.CommonStatus }

// GetSpec implements Object.
func (m *Module) GetSpec() any { return &m.Spec }

// GetStatus implements Object.
func (m *Module) GetStatus() any { return &m.Status }

// WithStatus implements Object.
func (m *Module) WithStatus(status any) Object {
	c := *m
	c.Status = status.(ModuleStatus)
	return &c
}

// RestartReport is the answer to a restart of many resources at once
// (reconcilectl restart modules --all, the MQTT <kind>/all/restart
// command): every resource is in exactly one list, each sorted by name.
type RestartReport struct {
	// Restarted lists the resources that were restarted and came back
	// (a Module's unit active again; a oneshot's finished).
	Restarted []string `json:"restarted"`
	// Failed lists those whose restart failed, with why.
	Failed []RestartFailure `json:"failed"`
	// Skipped lists those not restarted on purpose (a Module with state:
	// Stopped), with why.
	Skipped []RestartFailure `json:"skipped"`
}

// RestartFailure is one resource of RestartReport.Failed or Skipped.
type RestartFailure struct {
	Name  string `json:"name"`
	Error string `json:"error"`
}
