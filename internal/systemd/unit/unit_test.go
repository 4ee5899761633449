// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package unit

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reconciled/reconciled/apis/v1alpha1"
	"github.com/reconciled/reconciled/test/fixtures"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestQuote(t *testing.T) {
	tests := map[string]struct {
		in      string
		dollars bool
		want    string
	}{
		"plain":           {in: "/usr/bin/python3", want: `/usr/bin/python3`},
		"flag":            {in: "--port=8080", want: `--port=8080`},
		"empty":           {in: "", want: `""`},
		"space":           {in: "a b", want: `"a b"`},
		"double quote":    {in: `say "hi"`, want: `"say \"hi\""`},
		"single quote":    {in: `it's`, want: `"it's"`},
		"backslash":       {in: `C:\dir\`, want: `"C:\\dir\\"`},
		"lone backslash":  {in: `\`, want: `"\\"`},
		"percent":         {in: "100%", want: `100%%`},
		"specifier":       {in: "%n", want: `%%n`},
		"dollar":          {in: "$HOME", dollars: true, want: `$$HOME`},
		"braces":          {in: "${HOME}", dollars: true, want: `"$${HOME}"`},
		"dollar in env":   {in: "A=$HOME", want: `A=$HOME`},
		"newline":         {in: "a\nExecStartPre=/bin/evil", want: `"a\nExecStartPre=/bin/evil"`},
		"crlf and tab":    {in: "a\r\n\tb", want: `"a\r\n\tb"`},
		"control":         {in: "\x01\x1b\x7f", want: `"\x01\x1b\x7f"`},
		"unicode":         {in: "grüße 😀", want: `"grüße 😀"`},
		"c1 control":      {in: "a\u0085b", want: `"a\xc2\x85b"`},
		"not utf-8":       {in: "a\xffb", want: `"a\xffb"`},
		"semicolon":       {in: ";", want: `";"`},
		"escaped semi":    {in: `\;`, want: `"\\;"`},
		"comment char":    {in: "#x", want: `"#x"`},
		"everything":      {in: "%$\\\"'\n", dollars: true, want: `"%%$$\\\"'\n"`},
		"trailing spaces": {in: " a ", want: `" a "`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, quote(tc.in, tc.dollars)); diff != "" {
				t.Errorf("quote(%q) (-want +got):\n%s", tc.in, diff)
			}
			// And systemd reads it back.
			words, err := splitWords(tc.want, false)
			if err != nil {
				t.Fatal(err)
			}
			got, err := unspecify(words[0])
			if err == nil && tc.dollars {
				got, err = undollar(got)
			}
			if err != nil || len(words) != 1 || got != tc.in {
				t.Errorf("read back %q, %v; want [%q]", words, err, tc.in)
			}
		})
	}
}

func TestCommandLine(t *testing.T) {
	tests := map[string]struct {
		argv    []string
		want    string
		wantErr string
	}{
		"simple":        {argv: []string{"/bin/echo", "hi"}, want: `/bin/echo hi`},
		"bare name":     {argv: []string{"python3", "main.py"}, want: `python3 main.py`},
		"spaced path":   {argv: []string{"/opt/my app/run"}, want: `"/opt/my app/run"`},
		"percent path":  {argv: []string{"/opt/100%/run"}, want: `/opt/100%%/run`},
		"empty arg":     {argv: []string{"/bin/echo", ""}, want: `/bin/echo ""`},
		"no argv":       {wantErr: "no program"},
		"empty program": {argv: []string{""}, wantErr: "program is empty"},
		"prefix":        {argv: []string{"-/bin/true"}, wantErr: "prefixes"},
		"at prefix":     {argv: []string{"@/bin/true"}, wantErr: "prefixes"},
		"relative":      {argv: []string{"bin/run"}, wantErr: "absolute path or a bare file name"},
		"dot":           {argv: []string{"."}, wantErr: "absolute path or a bare file name"},
		"semicolon":     {argv: []string{";"}, wantErr: "absolute path or a bare file name"},
		"directory":     {argv: []string{"/bin/"}, wantErr: "must not end in /"},
		"dollar":        {argv: []string{"/opt/$X/run"}, wantErr: "must not contain quotes"},
		"quote":         {argv: []string{`/opt/"x"`}, wantErr: "must not contain quotes"},
		"newline":       {argv: []string{"/bin/true\nExecStartPre=/bin/evil"}, wantErr: "control characters"},
		"nul":           {argv: []string{"/bin/echo", "a\x00b"}, wantErr: "NUL"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := commandLine(tc.argv)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("commandLine(%q) = %q, %v; want error containing %q", tc.argv, got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// sensorReader is the Module from the design document, with a few awkward
// values added.
func sensorReader() *v1alpha1.ModuleSpec {
	enabled := true
	return &v1alpha1.ModuleSpec{
		Description:      "Reads the sensors (100% of them)",
		Exec:             []string{"/opt/modules/sensor/venv/bin/python", "main.py", "--label", "living room", "--home=$HOME"},
		WorkingDirectory: "/opt/modules/sensor",
		User:             "modules",
		Environment:      map[string]string{"PYTHONUNBUFFERED": "1", "GREETING": `say "hi"`, "PATH_EXTRA": "$HOME/bin"},
		Type:             "simple",
		Restart:          "on-failure",
		RestartSec:       &metav1.Duration{Duration: 5 * time.Second},
		After:            []string{"network.target", "mosquitto.service"},
		Extra: map[string]map[string]v1alpha1.DirectiveValue{
			"Service": {"MemoryMax": {"200M"}, "ExecStartPre": {"/bin/mkdir -p %t/sensor", "-/bin/true"}},
			"Unit":    {"Wants": {"mosquitto.service"}},
			"X-Notes": {"Owner": {"team sensors"}},
		},
		State:    "Running",
		Enabled:  &enabled,
		Scope:    "system",
		UnitName: "sensor-reader.service",
	}
}

func TestRenderGolden(t *testing.T) {
	got, err := Render("sensor-reader", sensorReader())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "sensor-reader.service")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
}

func TestRenderDefaults(t *testing.T) {
	got, err := Render("tiny", &v1alpha1.ModuleSpec{Exec: []string{"/bin/true"}, Scope: "user"})
	if err != nil {
		t.Fatal(err)
	}
	want := `# Managed by reconciled (Module tiny); do not edit: changes are overwritten.
# reconciled.dev/module=tiny

[Service]
ExecStart=/bin/true

[Install]
WantedBy=default.target
`
	if diff := cmp.Diff(want, string(got)); diff != "" {
		t.Errorf("Render (-want +got):\n%s", diff)
	}
}

// TestRenderRoundTrip checks hostile values end up in the right directive
// and nowhere else.
func TestRenderRoundTrip(t *testing.T) {
	hostile := []string{"%n", "$HOME", "${HOME}", "a\nExecStartPre=/bin/evil", `\`, `"`, "'", ";", "", " x ", "grüße", "\xff"}
	spec := &v1alpha1.ModuleSpec{
		Description: "a \\ in the middle, 100%",
		Exec:        append([]string{"/bin/echo"}, hostile...),
		Environment: map[string]string{},
		RestartSec:  &metav1.Duration{Duration: 1500 * time.Millisecond},
		Extra:       map[string]map[string]v1alpha1.DirectiveValue{"Service": {"Nice": {"5"}, "ExecStartPre": {"", "/bin/true %n"}}},
	}
	for i, h := range hostile {
		if h != "\xff" {
			spec.Environment["V"+string(rune('A'+i))] = h
		}
	}
	out, err := Render("fuzz", spec)
	if err != nil {
		t.Fatal(err)
	}
	checkRoundTrip(t, spec, out)
}

func TestRenderErrors(t *testing.T) {
	tests := map[string]struct {
		name    string
		modify  func(s *v1alpha1.ModuleSpec)
		wantErr string
	}{
		"bad module name":         {name: "Sensor_Reader", wantErr: "module name"},
		"newline in description":  {modify: func(s *v1alpha1.ModuleSpec) { s.Description = "a\nExecStartPre=/bin/evil" }, wantErr: "Description"},
		"description backslash":   {modify: func(s *v1alpha1.ModuleSpec) { s.Description = `C:\` }, wantErr: "backslash"},
		"description not utf-8":   {modify: func(s *v1alpha1.ModuleSpec) { s.Description = "\xff" }, wantErr: "UTF-8"},
		"tab in user":             {modify: func(s *v1alpha1.ModuleSpec) { s.User = "a\tb" }, wantErr: "User"},
		"type with space":         {modify: func(s *v1alpha1.ModuleSpec) { s.Type = "simple\nUser=root" }, wantErr: "Type"},
		"restart with space":      {modify: func(s *v1alpha1.ModuleSpec) { s.Restart = "on failure" }, wantErr: "Restart"},
		"negative restartSec":     {modify: func(s *v1alpha1.ModuleSpec) { s.RestartSec.Duration = -time.Second }, wantErr: "negative"},
		"bad after":               {modify: func(s *v1alpha1.ModuleSpec) { s.After = []string{"network.target x.service"} }, wantErr: "After"},
		"after template":          {modify: func(s *v1alpha1.ModuleSpec) { s.After = []string{"getty@.service"} }, wantErr: "template"},
		"env name digit":          {modify: func(s *v1alpha1.ModuleSpec) { s.Environment["1X"] = "" }, wantErr: "variable name"},
		"env name dash":           {modify: func(s *v1alpha1.ModuleSpec) { s.Environment["A-B"] = "" }, wantErr: "variable name"},
		"env value not utf-8":     {modify: func(s *v1alpha1.ModuleSpec) { s.Environment["A"] = "\xff" }, wantErr: "UTF-8"},
		"scope":                   {modify: func(s *v1alpha1.ModuleSpec) { s.Scope = "global" }, wantErr: "scope"},
		"no exec":                 {modify: func(s *v1alpha1.ModuleSpec) { s.Exec = nil }, wantErr: "ExecStart"},
		"extra section":           {modify: func(s *v1alpha1.ModuleSpec) { s.Extra["Socket"] = nil }, wantErr: "section"},
		"extra section injection": {modify: func(s *v1alpha1.ModuleSpec) { s.Extra["X-A]\n[Service"] = nil }, wantErr: "section"},
		"extra directive":         {modify: func(s *v1alpha1.ModuleSpec) { s.Extra["Service"]["A=B"] = nil }, wantErr: "directive"},
		"extra directive comment": {modify: func(s *v1alpha1.ModuleSpec) { s.Extra["Service"]["#A"] = nil }, wantErr: "directive"},
		"extra reserved":          {modify: func(s *v1alpha1.ModuleSpec) { s.Extra["Service"]["ExecStart"] = []string{"/bin/evil"} }, wantErr: "written from the spec"},
		"extra newline":           {modify: func(s *v1alpha1.ModuleSpec) { s.Extra["Service"]["Nice"] = []string{"1\nUser=root"} }, wantErr: "control character"},
		"extra continuation":      {modify: func(s *v1alpha1.ModuleSpec) { s.Extra["Service"]["Nice"] = []string{`1 \ `} }, wantErr: "backslash"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			spec := sensorReader()
			if tc.modify != nil {
				tc.modify(spec)
			}
			if tc.name == "" {
				tc.name = "sensor-reader"
			}
			got, err := Render(tc.name, spec)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Render = %q, %v; want error containing %q", got, err, tc.wantErr)
			}
		})
	}
	if _, err := Render("x", nil); err == nil {
		t.Error("Render(nil spec) succeeded")
	}
}

func TestTimeSpan(t *testing.T) {
	tests := map[time.Duration]string{
		0:                       "0s",
		5 * time.Second:         "5s",
		90 * time.Second:        "90s",
		1500 * time.Millisecond: "1500ms",
		1234 * time.Microsecond: "1234us",
		1:                       "1us",
		1001:                    "2us",
	}
	for d, want := range tests {
		t.Run(d.String(), func(t *testing.T) {
			got, err := timeSpan(d)
			if err != nil || got != want {
				t.Errorf("timeSpan(%v) = %q, %v; want %q", d, got, err, want)
			}
		})
	}
}

func TestIsManaged(t *testing.T) {
	rendered, err := Render("sensor-reader", sensorReader())
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		content    string
		wantModule string
		wantOK     bool
	}{
		"rendered":     {content: string(rendered), wantModule: "sensor-reader", wantOK: true},
		"crlf":         {content: strings.ReplaceAll(string(rendered), "\n", "\r\n"), wantModule: "sensor-reader", wantOK: true},
		"other module": {content: "# reconciled.dev/module=other\n[Unit]\n", wantModule: "other", wantOK: true},
		"after other comments": {
			content:    "# edited by hand? no\n\n; really\n# reconciled.dev/module=a\n[Service]\n",
			wantModule: "a", wantOK: true,
		},
		"hand written": {content: "[Unit]\nDescription=mine\n[Service]\nExecStart=/bin/true\n"},
		"empty":        {},
		"marker below the top": {
			content: "[Unit]\nDescription=mine\n# reconciled.dev/module=a\n",
		},
		"marker in a value": {content: "[Unit]\nDescription=# reconciled.dev/module=a\n"},
		"indented marker":   {content: "  # reconciled.dev/module=a\n"},
		"bad name":          {content: "# reconciled.dev/module=A B\n"},
		"empty name":        {content: "# reconciled.dev/module=\n"},
		"human line only":   {content: "# Managed by reconciled (Module a); do not edit: changes are overwritten.\n[Unit]\n"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			module, ok := IsManaged([]byte(tc.content))
			if module != tc.wantModule || ok != tc.wantOK {
				t.Errorf("IsManaged = %q, %v; want %q, %v", module, ok, tc.wantModule, tc.wantOK)
			}
		})
	}
}

func TestValidUnitName(t *testing.T) {
	tests := map[string]bool{
		"sensor-reader.service":               true,
		"a.service":                           true,
		"sensor@living-room.service":          true,
		"a:b_c.d@e@f.service":                 true,
		strings.Repeat("a", 247) + ".service": true,
		strings.Repeat("a", 248) + ".service": false,
		"":                                    false,
		".service":                            false,
		"sensor":                              false,
		"sensor.timer":                        false,
		"sensor.service.d":                    false,
		"sensor@.service":                     false,
		"@sensor.service":                     false,
		"sensor reader.service":               false,
		"sensor/reader.service":               false,
		`sensor\x2dreader.service`:            false,
		"sensör.service":                      false,
		"sensor.service\n":                    false,
	}
	for name, want := range tests {
		t.Run(name, func(t *testing.T) {
			if err := ValidUnitName(name); (err == nil) != want {
				t.Errorf("ValidUnitName(%q) = %v; want valid=%v", name, err, want)
			}
		})
	}
	// After= takes other unit types and systemd-escaped names.
	if err := validUnitName(`mnt-my\x2ddata.mount`, unitTypes, true); err != nil {
		t.Error(err)
	}
}

// TestSystemdAnalyzeVerify has systemd itself parse rendered units. It runs
// only where systemd-analyze is installed; `verify` works as root without a
// running systemd (checked with systemd 252 in a container), and prints any
// warning about a directive it could not read, so the test wants no output
// at all. WorkingDirectory= and User= need not exist for verify.
func TestSystemdAnalyzeVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		fixtures.SkipOrFail(t, "systemd-analyze not installed")
	}
	hostile := sensorReader()
	hostile.Description = `100% "quoted" \ and grüße`
	hostile.Exec = []string{"/bin/sh", "-c", `echo "$HOME" '%n' \ ;`, "", ";", `\;`, "a\nExecStartPre=/bin/evil", "\t\x01\x7f\u0085\xff", "${HOME}"}
	hostile.Environment = map[string]string{"A": "x\ny", "B": `"%n" $HOME \`, "C": "", "D": "\u0085 grüße"}
	hostile.RestartSec.Duration = 1234567
	hostile.Scope = "user"
	for name, spec := range map[string]*v1alpha1.ModuleSpec{"sensor-reader": sensorReader(), "hostile": hostile} {
		t.Run(name, func(t *testing.T) {
			spec.Exec[0] = "/bin/sh" // verify wants an executable that exists
			content, err := Render(name, spec)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), name+".service")
			if err := os.WriteFile(path, content, 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.CommandContext(t.Context(), analyze, "verify", "--man=no", "--recursive-errors=no", path)
			cmd.Dir = filepath.Dir(path)
			out, err := cmd.CombinedOutput()
			if err != nil || len(bytes.TrimSpace(out)) > 0 {
				t.Errorf("systemd-analyze verify: %v\n%s\nunit:\n%s", err, out, content)
			}
		})
	}
}
