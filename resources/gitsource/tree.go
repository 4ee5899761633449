// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package gitsource

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
)

// catFile is a running `git cat-file --batch`: every object the source
// reads (files, commits, trees) goes through it, so reading a commit or
// comparing two costs no process.
type catFile struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startCatFile(git string, env []string) (*catFile, error) {
	cmd := exec.Command(git, "cat-file", "--batch")
	cmd.Env = env
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("git cat-file: %w", err)
	}
	return &catFile{cmd: cmd, in: in, out: bufio.NewReaderSize(out, 64<<10)}, nil
}

// object returns the type and content of the object named by rev (an
// object name or "<commit>:<path>"); ok=false when it does not exist.
func (c *catFile) object(rev string) (typ string, data []byte, ok bool, err error) {
	if rev == "" || strings.ContainsAny(rev, "\n") {
		return "", nil, false, nil
	}
	if _, err := io.WriteString(c.in, rev+"\n"); err != nil {
		return "", nil, false, err
	}
	header, err := c.out.ReadString('\n')
	if err != nil {
		return "", nil, false, err
	}
	fields := strings.Fields(header)
	if len(fields) == 2 && (fields[1] == "missing" || fields[1] == "ambiguous") {
		return "", nil, false, nil
	}
	if len(fields) != 3 {
		return "", nil, false, fmt.Errorf("git cat-file: unexpected %q", strings.TrimSpace(header))
	}
	size, err := strconv.Atoi(fields[2])
	if err != nil || size < 0 {
		return "", nil, false, fmt.Errorf("git cat-file: unexpected %q", strings.TrimSpace(header))
	}
	data = make([]byte, size+1) // and the newline after it
	if _, err := io.ReadFull(c.out, data); err != nil {
		return "", nil, false, err
	}
	return fields[1], data[:size], true, nil
}

// read returns the blob named by rev ("<commit>:<path>"); ok=false when it
// does not exist or is a folder.
func (c *catFile) read(rev string) ([]byte, bool, error) {
	typ, data, ok, err := c.object(rev)
	if err != nil || !ok || typ != "blob" {
		return nil, false, err
	}
	return data, true, nil
}

func (c *catFile) close() {
	c.in.Close()
	c.cmd.Wait()
}

// treeEntry is one entry of a git tree object.
type treeEntry struct {
	name string
	dir  bool   // a tree (folder), not a file
	id   string // object name, hex
}

// tree returns the entries of the tree (or of a commit's tree) named by id,
// sorted by name; none for id "".
func (c *catFile) tree(id string) ([]treeEntry, error) {
	if id == "" {
		return nil, nil
	}
	typ, data, ok, err := c.object(id)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("git: object %s is missing", id)
	}
	if typ == "commit" {
		line, _, _ := bytes.Cut(data, []byte("\n"))
		tree, found := bytes.CutPrefix(line, []byte("tree "))
		if !found {
			return nil, fmt.Errorf("git: commit %s names no tree", id)
		}
		return c.tree(string(tree))
	}
	if typ != "tree" {
		return nil, fmt.Errorf("git: object %s is a %s, not a tree", id, typ)
	}
	return parseTree(data, len(id)/2)
}

// parseTree parses a tree object's entries ("<mode> <name>\0<id>"), the
// ids being idLen bytes (20 for SHA-1, 32 for SHA-256 repositories).
func parseTree(data []byte, idLen int) ([]treeEntry, error) {
	var entries []treeEntry
	for len(data) > 0 {
		mode, rest, ok := bytes.Cut(data, []byte(" "))
		name, rest2, ok2 := bytes.Cut(rest, []byte{0})
		if !ok || !ok2 || len(rest2) < idLen || len(name) == 0 {
			return nil, fmt.Errorf("git: malformed tree object")
		}
		entries = append(entries, treeEntry{name: string(name), dir: string(mode) == "40000", id: hex.EncodeToString(rest2[:idLen])})
		data = rest2[idLen:]
	}
	slices.SortFunc(entries, func(a, b treeEntry) int { return strings.Compare(a.name, b.name) })
	return entries, nil
}

// diffTrees appends to out the paths of files below prefix that differ
// between the trees a and b (either "" for none: then every file of the
// other); folders for which enter is false are skipped.
func (c *catFile) diffTrees(prefix, a, b string, enter func(dir string) bool, out []string) ([]string, error) {
	if a == b {
		return out, nil
	}
	ea, err := c.tree(a)
	if err != nil {
		return out, err
	}
	eb, err := c.tree(b)
	if err != nil {
		return out, err
	}
	for len(ea) > 0 || len(eb) > 0 {
		var x, y treeEntry // x from a, y from b; zero when absent
		switch {
		case len(eb) == 0 || len(ea) > 0 && ea[0].name < eb[0].name:
			x, ea = ea[0], ea[1:]
		case len(ea) == 0 || eb[0].name < ea[0].name:
			y, eb = eb[0], eb[1:]
		default:
			x, y, ea, eb = ea[0], eb[0], ea[1:], eb[1:]
		}
		if x.id == y.id && x.dir == y.dir {
			continue
		}
		name := x.name + y.name // one is empty, or both are the same
		if x.name != "" && y.name != "" {
			name = x.name
		}
		p := prefix + name
		// A file on one side, a folder on the other: both change.
		fileA, fileB := !x.dir && x.id != "", !y.dir && y.id != ""
		if fileA || fileB {
			out = append(out, p)
		}
		treeA, treeB := "", ""
		if x.dir {
			treeA = x.id
		}
		if y.dir {
			treeB = y.id
		}
		if (treeA != "" || treeB != "") && enter(p) {
			if out, err = c.diffTrees(p+"/", treeA, treeB, enter, out); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}
