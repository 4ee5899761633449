// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package v1alpha1

import (
	"encoding/hex"
	"net"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PiNode phases.
const (
	PiNodePending     = "Pending"
	PiNodePoweringOff = "PoweringOff"
	PiNodeBooting     = "Booting"
	PiNodeInstalling  = "Installing"
	PiNodeInstalled   = "Installed"
	PiNodeFailed      = "Failed"
	PiNodeOff         = "Off"
)

// PiNode is a Raspberry Pi that netboots from the daemon.
type PiNode struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Spec       PiNodeSpec   `json:"spec"`
	Status     PiNodeStatus `json:"status,omitempty"`
}

// PiNodeSpec declares one Pi.
type PiNodeSpec struct {
	MAC    string       `json:"mac"`
	IP     string       `json:"ip"`
	Switch SwitchPort   `json:"switch"`
	Image  *ImageSource `json:"image,omitempty"`
	// InstallGeneration: bump it (or change image) to reinstall; 0 declares
	// an installed Pi that must not be reinstalled.
	InstallGeneration *int64 `json:"installGeneration,omitempty"`
	// Power is On (default) or Off.
	Power string `json:"power,omitempty"`
}

// SwitchPort says which PoE switch port powers the Pi and how to reach it over SNMP.
type SwitchPort struct {
	Address       string  `json:"address"`
	Port          int     `json:"port"`
	Community     string  `json:"community,omitempty"`
	CommunityFile string  `json:"communityFile,omitempty"`
	V3            *SNMPv3 `json:"v3,omitempty"`
}

// SNMPv3 holds user-based security settings; secrets come from files.
type SNMPv3 struct {
	User             string `json:"user"`
	AuthProtocol     string `json:"authProtocol,omitempty"`
	AuthPasswordFile string `json:"authPasswordFile,omitempty"`
	PrivProtocol     string `json:"privProtocol,omitempty"`
	PrivPasswordFile string `json:"privPasswordFile,omitempty"`
}

// ImageSource names the OS image to install.
type ImageSource struct {
	URL    string `json:"url"`
	SHA256 string `json:"sha256,omitempty"`
}

// PiNodeStatus records install progress.
type PiNodeStatus struct {
	CommonStatus        `json:",inline"`
	InstalledGeneration *int64       `json:"installedGeneration,omitempty"`
	LastSeen            *metav1.Time `json:"lastSeen,omitempty"`
	ObservedSwitchPort  int          `json:"observedSwitchPort,omitempty"`
	// LastPowerCycle is the last power cycle that was not part of an
	// install (reconcilectl restart, or a change of the
	// reconciled.dev/restartedAt annotation).
	LastPowerCycle *PowerCycle `json:"lastPowerCycle,omitempty"`
}

// Results of a PowerCycle.
const (
	PowerCycleInProgress = "InProgress"
	PowerCycleSucceeded  = "Succeeded"
	PowerCycleFailed     = "Failed"
	PowerCycleCancelled  = "Cancelled"
)

// PowerCycle is a power cycle of a PiNode's switch port (off, the
// daemon's powerOffTime, on, read back), without an install: piman's
// "restart".
type PowerCycle struct {
	// Trigger says what asked for it: "reconcilectl restart" (the API), or
	// "annotation reconciled.dev/restartedAt=VALUE".
	Trigger string `json:"trigger"`
	// Port is the switch port that was cycled.
	Port int `json:"port"`
	// StartedAt is when the cycle began.
	StartedAt metav1.Time `json:"startedAt"`
	// FinishedAt is when the switch read the port on again.
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`
	// Result is InProgress, Succeeded, Failed (the switch did not switch
	// the port off, or not on again, within the daemon's bootTimeout; a
	// port left off is still retried) or Cancelled (power: Off meanwhile).
	Result string `json:"result"`
	// Message says what happened.
	Message string `json:"message,omitempty"`
}

// Default fills in the documented defaults.
func (n *PiNode) Default() {
	if n.Spec.Power == "" {
		n.Spec.Power = "On"
	}
	if n.Spec.InstallGeneration == nil {
		one := int64(1)
		n.Spec.InstallGeneration = &one
	}
}

// Validate checks a defaulted PiNode.
func (n *PiNode) Validate() field.ErrorList {
	errs := validateMeta(&n.TypeMeta, &n.ObjectMeta)
	s := &n.Spec
	sp := field.NewPath("spec")
	if hw, err := net.ParseMAC(s.MAC); err != nil || len(hw) != 6 {
		errs = append(errs, field.Invalid(sp.Child("mac"), s.MAC, "must be a MAC address like dc:a6:32:01:02:03"))
	}
	if ip := net.ParseIP(s.IP); ip == nil || ip.To4() == nil {
		errs = append(errs, field.Invalid(sp.Child("ip"), s.IP, "must be an IPv4 address"))
	}
	swp := sp.Child("switch")
	errs = append(errs, validateHostPort(s.Switch.Address, swp.Child("address"))...)
	if s.Switch.Port < 1 {
		errs = append(errs, field.Invalid(swp.Child("port"), s.Switch.Port, "must be a switch port number (1 or more)"))
	}
	auth := 0
	for _, set := range []bool{s.Switch.Community != "", s.Switch.CommunityFile != "", s.Switch.V3 != nil} {
		if set {
			auth++
		}
	}
	if auth > 1 {
		errs = append(errs, field.Invalid(swp, "", "set at most one of community, communityFile, v3"))
	}
	errs = append(errs, validateAbsPath(s.Switch.CommunityFile, swp.Child("communityFile"))...)
	if v3 := s.Switch.V3; v3 != nil {
		vp := swp.Child("v3")
		if v3.User == "" {
			errs = append(errs, field.Required(vp.Child("user"), "the SNMPv3 user name"))
		}
		if v3.AuthProtocol != "" {
			errs = append(errs, oneOf(v3.AuthProtocol, vp.Child("authProtocol"), "MD5", "SHA", "SHA224", "SHA256", "SHA384", "SHA512")...)
		}
		if v3.PrivProtocol != "" {
			errs = append(errs, oneOf(v3.PrivProtocol, vp.Child("privProtocol"), "DES", "AES", "AES192", "AES256")...)
		}
		errs = append(errs, validateAbsPath(v3.AuthPasswordFile, vp.Child("authPasswordFile"))...)
		errs = append(errs, validateAbsPath(v3.PrivPasswordFile, vp.Child("privPasswordFile"))...)
	}
	if img := s.Image; img != nil {
		ip := sp.Child("image")
		errs = append(errs, validateURL(img.URL, ip.Child("url"), "file", "http", "https")...)
		if img.SHA256 != "" {
			if b, err := hex.DecodeString(img.SHA256); err != nil || len(b) != 32 {
				errs = append(errs, field.Invalid(ip.Child("sha256"), img.SHA256, "must be 64 hex digits"))
			}
		}
	}
	if s.InstallGeneration != nil && *s.InstallGeneration < 0 {
		errs = append(errs, field.Invalid(sp.Child("installGeneration"), *s.InstallGeneration, "must not be negative"))
	}
	errs = append(errs, oneOf(s.Power, sp.Child("power"), "On", "Off")...)
	return errs
}

// GetTypeMeta implements Object.
func (n *PiNode) GetTypeMeta() *TypeMeta { return &n.TypeMeta }

// GetObjectMeta implements Object.
func (n *PiNode) GetObjectMeta() *ObjectMeta { return &n.ObjectMeta }

// GetCommonStatus implements Object.
func (n *PiNode) GetCommonStatus() *CommonStatus { return &n.Status.CommonStatus }

// GetSpec implements Object.
func (n *PiNode) GetSpec() any { return &n.Spec }

// GetStatus implements Object.
func (n *PiNode) GetStatus() any { return &n.Status }

// WithStatus implements Object.
func (n *PiNode) WithStatus(status any) Object {
	c := *n
	c.Status = status.(PiNodeStatus)
	return &c
}
