// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"net/mail"
	"path"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// AlertRoute phases.
const (
	AlertRouteReady    = "Ready"
	AlertRouteDegraded = "Degraded"
)

// Alert severities, lowest first.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// AlertRoute says who hears about which alerts.
type AlertRoute struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       AlertRouteSpec   `json:"spec"`
	Status     AlertRouteStatus `json:"status,omitempty"`
}

// AlertRouteSpec selects alerts and delivers them.
type AlertRouteSpec struct {
	Match          AlertMatch       `json:"match,omitempty"`
	GroupWait      *metav1.Duration `json:"groupWait,omitempty"`
	RepeatInterval *metav1.Duration `json:"repeatInterval,omitempty"`
	SendResolved   *bool            `json:"sendResolved,omitempty"`
	Receivers      []Receiver       `json:"receivers"`
}

// AlertMatch selects alerts; empty fields match everything.
type AlertMatch struct {
	Kinds    []string          `json:"kinds,omitempty"`
	Names    []string          `json:"names,omitempty"`
	Labels   map[string]string `json:"labels,omitempty"`
	Severity string            `json:"severity,omitempty"`
	// Levels selects Check alerts by the level taken (and Unknown);
	// alerts of other kinds have no level and do not match.
	Levels []string `json:"levels,omitempty"`
	// FromLevels selects Check alerts by the level before it (dmon's
	// "depending on the previous level").
	FromLevels []string `json:"fromLevels,omitempty"`
}

// Receiver is exactly one delivery target.
type Receiver struct {
	Email        *EmailReceiver        `json:"email,omitempty"`
	Webhook      *WebhookReceiver      `json:"webhook,omitempty"`
	Alertmanager *AlertmanagerReceiver `json:"alertmanager,omitempty"`
	Exec         *ExecCheck            `json:"exec,omitempty"`
	Log          *LogReceiver          `json:"log,omitempty"`
}

// EmailReceiver sends mail over SMTP.
type EmailReceiver struct {
	Smarthost    string   `json:"smarthost"`
	StartTLS     bool     `json:"starttls,omitempty"`
	Username     string   `json:"username,omitempty"`
	PasswordFile string   `json:"passwordFile,omitempty"`
	From         string   `json:"from"`
	To           []string `json:"to"`
}

// WebhookReceiver POSTs alert JSON.
type WebhookReceiver struct {
	URL string `json:"url"`
	// SecretFile holds the HMAC-SHA256 key for the signature header.
	SecretFile string `json:"secretFile,omitempty"`
}

// AlertmanagerReceiver posts to Alertmanager's /api/v2/alerts.
type AlertmanagerReceiver struct {
	URL string `json:"url"`
}

// LogReceiver writes alerts to the daemon's log.
type LogReceiver struct{}

// AlertRouteStatus counts deliveries.
type AlertRouteStatus struct {
	CommonStatus `json:",inline"`
	Sent         int64 `json:"sent,omitempty"`
	Failed       int64 `json:"failed,omitempty"`
	Pending      int64 `json:"pending,omitempty"`
}

// Default fills in the documented defaults.
func (a *AlertRoute) Default() {
	s := &a.Spec
	defaultDuration(&s.GroupWait, 30*time.Second)
	defaultDuration(&s.RepeatInterval, 4*time.Hour)
	if s.SendResolved == nil {
		t := true
		s.SendResolved = &t
	}
	if s.Match.Severity == "" {
		s.Match.Severity = SeverityInfo
	}
}

// Validate checks a defaulted AlertRoute.
func (a *AlertRoute) Validate() field.ErrorList {
	errs := validateMeta(&a.TypeMeta, &a.ObjectMeta)
	s := &a.Spec
	sp := field.NewPath("spec")
	mp := sp.Child("match")
	for i, k := range s.Match.Kinds {
		if _, ok := LookupKind(k); !ok {
			errs = append(errs, field.NotSupported(mp.Child("kinds").Index(i), k, KindNames()))
		}
	}
	for i, n := range s.Match.Names {
		if _, err := path.Match(n, ""); err != nil {
			errs = append(errs, field.Invalid(mp.Child("names").Index(i), n, "not a valid glob: "+err.Error()))
		}
	}
	errs = append(errs, oneOf(s.Match.Severity, mp.Child("severity"), SeverityInfo, SeverityWarning, SeverityCritical)...)
	for key, levels := range map[string][]string{"levels": s.Match.Levels, "fromLevels": s.Match.FromLevels} {
		for i, l := range levels {
			if l != CheckUnknown && !levelName.MatchString(l) {
				errs = append(errs, field.Invalid(mp.Child(key).Index(i), l, "a Check level name (fine, soso, sick, critical, dead, one of a Check's levelNames) or Unknown"))
			}
		}
	}
	errs = append(errs, validatePositive(s.GroupWait, sp.Child("groupWait"))...)
	errs = append(errs, validatePositive(s.RepeatInterval, sp.Child("repeatInterval"))...)
	if len(s.Receivers) == 0 {
		errs = append(errs, field.Required(sp.Child("receivers"), "at least one receiver"))
	}
	for i, r := range s.Receivers {
		rp := sp.Child("receivers").Index(i)
		errs = append(errs, exactlyOne(rp, map[string]bool{"email": r.Email != nil, "webhook": r.Webhook != nil, "alertmanager": r.Alertmanager != nil, "exec": r.Exec != nil, "log": r.Log != nil})...)
		if e := r.Email; e != nil {
			ep := rp.Child("email")
			errs = append(errs, validateHostPort(e.Smarthost, ep.Child("smarthost"))...)
			errs = append(errs, validateAbsPath(e.PasswordFile, ep.Child("passwordFile"))...)
			if e.Username != "" && e.PasswordFile == "" {
				errs = append(errs, field.Required(ep.Child("passwordFile"), "a file holding the password of username "+e.Username))
			}
			if _, err := mail.ParseAddress(e.From); err != nil {
				errs = append(errs, field.Invalid(ep.Child("from"), e.From, "not an email address"))
			}
			if len(e.To) == 0 {
				errs = append(errs, field.Required(ep.Child("to"), "at least one recipient"))
			}
			for j, to := range e.To {
				if _, err := mail.ParseAddress(to); err != nil {
					errs = append(errs, field.Invalid(ep.Child("to").Index(j), to, "not an email address"))
				}
			}
		}
		if w := r.Webhook; w != nil {
			errs = append(errs, validateURL(w.URL, rp.Child("webhook", "url"), "http", "https")...)
			errs = append(errs, validateAbsPath(w.SecretFile, rp.Child("webhook", "secretFile"))...)
		}
		if am := r.Alertmanager; am != nil {
			errs = append(errs, validateURL(am.URL, rp.Child("alertmanager", "url"), "http", "https")...)
		}
		if r.Exec != nil {
			errs = append(errs, validateArgv(r.Exec.Command, rp.Child("exec", "command"))...)
		}
	}
	return errs
}

// GetTypeMeta implements Object.
func (a *AlertRoute) GetTypeMeta() *TypeMeta { return &a.TypeMeta }

// GetObjectMeta implements Object.
func (a *AlertRoute) GetObjectMeta() *ObjectMeta { return &a.ObjectMeta }

// GetCommonStatus implements Object.
func (a *AlertRoute) GetCommonStatus() *CommonStatus { return &a.Status.CommonStatus }

// GetSpec implements Object.
func (a *AlertRoute) GetSpec() any { return &a.Spec }

// GetStatus implements Object.
func (a *AlertRoute) GetStatus() any { return &a.Status }

// WithStatus implements Object.
func (a *AlertRoute) WithStatus(status any) Object {
	c := *a
	c.Status = status.(AlertRouteStatus)
	return &c
}
