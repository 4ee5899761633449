// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"regexp"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Link phases.
const (
	LinkUnknown  = "Unknown"
	LinkUp       = "Up"
	LinkDegraded = "Degraded"
	LinkDown     = "Down"
)

// Link watches a connection to a remote node.
type Link struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       LinkSpec   `json:"spec"`
	Status     LinkStatus `json:"status,omitempty"`
}

// LinkSpec holds exactly one probe and its timing.
type LinkSpec struct {
	TCP  *TCPCheck  `json:"tcp,omitempty"`
	ICMP *ICMPProbe `json:"icmp,omitempty"`
	HTTP *HTTPProbe `json:"http,omitempty"`
	Exec *ExecCheck `json:"exec,omitempty"`
	// Interval between probes (default 30s).
	Interval *metav1.Duration `json:"interval,omitempty"`
	// Timeout of one probe (default 5s, at most Interval).
	Timeout *metav1.Duration `json:"timeout,omitempty"`
	// FailureThreshold consecutive failures mark the link Down (default 3).
	FailureThreshold int32 `json:"failureThreshold,omitempty"`
	// SuccessThreshold consecutive successes mark it Up (default 1).
	SuccessThreshold int32 `json:"successThreshold,omitempty"`
	// DegradedLatency: a successful probe slower than this is Degraded.
	DegradedLatency *metav1.Duration `json:"degradedLatency,omitempty"`
}

// ICMPProbe pings Host.
type ICMPProbe struct {
	Host string `json:"host"`
}

// HTTPProbe fetches URL (optionally over a unix socket) and checks the answer.
type HTTPProbe struct {
	URL          string `json:"url"`
	UnixSocket   string `json:"unixSocket,omitempty"`
	ExpectStatus []int  `json:"expectStatus,omitempty"`
	// ExpectBody is a regular expression the body must match.
	ExpectBody string `json:"expectBody,omitempty"`
}

// LinkStatus records transitions only; fast figures live in the API.
type LinkStatus struct {
	CommonStatus `json:",inline"`
	Since        *metav1.Time `json:"since,omitempty"`
	Transitions  int64        `json:"transitions,omitempty"`
	LastError    string       `json:"lastError,omitempty"`
}

// Default fills in the documented defaults.
func (l *Link) Default() {
	s := &l.Spec
	defaultDuration(&s.Interval, 30*time.Second)
	if s.Timeout == nil {
		t := 5 * time.Second
		if s.Interval.Duration < t {
			t = s.Interval.Duration
		}
		s.Timeout = duration(t)
	}
	if s.FailureThreshold == 0 {
		s.FailureThreshold = 3
	}
	if s.SuccessThreshold == 0 {
		s.SuccessThreshold = 1
	}
}

// Validate checks a defaulted Link.
func (l *Link) Validate() field.ErrorList {
	errs := validateMeta(&l.TypeMeta, &l.ObjectMeta)
	s := &l.Spec
	sp := field.NewPath("spec")
	errs = append(errs, exactlyOne(sp, map[string]bool{"tcp": s.TCP != nil, "icmp": s.ICMP != nil, "http": s.HTTP != nil, "exec": s.Exec != nil})...)
	if s.TCP != nil {
		errs = append(errs, validateHostPort(s.TCP.Address, sp.Child("tcp", "address"))...)
	}
	if s.ICMP != nil && s.ICMP.Host == "" {
		errs = append(errs, field.Required(sp.Child("icmp", "host"), "a host name or address"))
	}
	if h := s.HTTP; h != nil {
		hp := sp.Child("http")
		errs = append(errs, validateURL(h.URL, hp.Child("url"), "http", "https")...)
		errs = append(errs, validateAbsPath(h.UnixSocket, hp.Child("unixSocket"))...)
		errs = append(errs, validateStatusCodes(h.ExpectStatus, hp.Child("expectStatus"))...)
		if h.ExpectBody != "" {
			if _, err := regexp.Compile(h.ExpectBody); err != nil {
				errs = append(errs, field.Invalid(hp.Child("expectBody"), h.ExpectBody, err.Error()))
			}
		}
	}
	if s.Exec != nil {
		errs = append(errs, validateArgv(s.Exec.Command, sp.Child("exec", "command"))...)
	}
	errs = append(errs, validatePositive(s.Interval, sp.Child("interval"))...)
	errs = append(errs, validatePositive(s.Timeout, sp.Child("timeout"))...)
	if s.Interval != nil && s.Timeout != nil && s.Timeout.Duration > s.Interval.Duration {
		errs = append(errs, field.Invalid(sp.Child("timeout"), s.Timeout.Duration.String(), "must not exceed interval"))
	}
	if s.FailureThreshold < 1 {
		errs = append(errs, field.Invalid(sp.Child("failureThreshold"), s.FailureThreshold, "must be at least 1"))
	}
	if s.SuccessThreshold < 1 {
		errs = append(errs, field.Invalid(sp.Child("successThreshold"), s.SuccessThreshold, "must be at least 1"))
	}
	errs = append(errs, validatePositive(s.DegradedLatency, sp.Child("degradedLatency"))...)
	return errs
}

// GetTypeMeta implements Object.
func (l *Link) GetTypeMeta() *TypeMeta { return &l.TypeMeta }

// GetObjectMeta implements Object.
func (l *Link) GetObjectMeta() *ObjectMeta { return &l.ObjectMeta }

// GetCommonStatus implements Object.
func (l *Link) GetCommonStatus() *CommonStatus { return &l.Status.CommonStatus }

// GetSpec implements Object.
func (l *Link) GetSpec() any { return &l.Spec }

// GetStatus implements Object.
func (l *Link) GetStatus() any { return &l.Status }

// WithStatus implements Object.
func (l *Link) WithStatus(status any) Object {
	c := *l
	c.Status = status.(LinkStatus)
	return &c
}
