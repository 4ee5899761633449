// Copyright 2026 The reconciled Authors.
// SPDX-License-Identifier: Apache-2.0

package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/reconciled/reconciled/internal/atomicfile"
)

// floors are what this machine needs, in this run, for the steps any
// reconciler must take: machines of this kind differ 3-6x in fork/exec and
// fsync, so every figure is printed beside its floor and as a ratio of it.
// Each floor is the median of many runs.
type floors struct {
	exec        time.Duration // fork+exec of /bin/true, waited for
	atomicWrite time.Duration // write a 1 KiB file, fsync, rename, fsync the folder
	fsnotify    time.Duration // a rename until inotify delivers its event
	udpRTT      time.Duration // one lock-step UDP round trip on loopback
}

// measureFloors measures the floors in dir.
func measureFloors(dir string) floors {
	const n = 200
	var f floors
	f.exec = median(n, func() time.Duration {
		t0 := time.Now()
		check(exec.Command("/bin/true").Run())
		return time.Since(t0)
	})
	data := make([]byte, 1024)
	path := filepath.Join(dir, "floor-write.yaml")
	f.atomicWrite = median(n, func() time.Duration {
		t0 := time.Now()
		check(atomicfile.Write(path, data, 0o644))
		return time.Since(t0)
	})
	w, err := fsnotify.NewWatcher()
	check(err)
	defer w.Close()
	check(w.Add(dir))
	target := filepath.Join(dir, "floor-watch.yaml")
	f.fsnotify = median(n, func() time.Duration {
		tmp := filepath.Join(dir, ".floor.tmp")
		check(os.WriteFile(tmp, data, 0o644))
		drain(w)
		t0 := time.Now()
		check(os.Rename(tmp, target))
		for ev := range w.Events {
			if ev.Name == target {
				break
			}
		}
		return time.Since(t0)
	})
	f.udpRTT = udpRoundTrip(1000)
	logf("floors: exec %s, atomic write %s, fsnotify %s, UDP round trip %s (medians)", ms(f.exec), ms(f.atomicWrite), ms(f.fsnotify), ms(f.udpRTT))
	return f
}

// editFloor is the least an edit -> converged can cost: the watch sees
// the edit, the program is spawned, the status is written durably.
func (f floors) editFloor() time.Duration { return f.fsnotify + f.exec + f.atomicWrite }

// rows prints the floors at the top of the table.
func (f floors) rows() []row {
	return []row{
		{what: "floor: fork+exec /bin/true (median)", ours: ms(f.exec)},
		{what: "floor: fsync'd atomic write of 1 KiB (median)", ours: ms(f.atomicWrite)},
		{what: "floor: rename -> fsnotify event (median)", ours: ms(f.fsnotify)},
		{what: "floor: lock-step UDP round trip on loopback (median)", ours: ms(f.udpRTT)},
	}
}

// udpRoundTrip is the median of n lock-step round trips to an echo
// goroutine on loopback.
func udpRoundTrip(n int) time.Duration {
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	check(err)
	defer srv.Close()
	go func() {
		buf := make([]byte, 64)
		for {
			k, addr, err := srv.ReadFromUDP(buf)
			if err != nil {
				return
			}
			srv.WriteToUDP(buf[:k], addr)
		}
	}()
	c, err := net.DialUDP("udp", nil, srv.LocalAddr().(*net.UDPAddr))
	check(err)
	defer c.Close()
	buf := make([]byte, 64)
	return median(n, func() time.Duration {
		t0 := time.Now()
		_, err := c.Write([]byte("ping"))
		check(err)
		check(c.SetReadDeadline(time.Now().Add(5 * time.Second)))
		_, err = c.Read(buf)
		check(err)
		return time.Since(t0)
	})
}

// median runs f n times and returns its median.
func median(n int, f func() time.Duration) time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		ds[i] = f()
	}
	return percentile(ds, 0.5)
}

// ofFloor formats figure / floor.
func ofFloor(figure, floor time.Duration) string {
	return fmt.Sprintf("%.1fx floor", float64(figure)/float64(max(floor, time.Microsecond)))
}
