package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// pipeBlast is a light load generator for read benchmarks: conns raw
// HTTP/1.1 connections spread over urls, each writing depth GET requests
// at a time (pipelined) and reading the responses with a minimal parser,
// until n requests were answered. Without a client's per-request
// connection handling and with one write per batch, it costs a fraction of
// what net/http's client does per request, so on a small machine the
// daemons, not the generator, get the CPU. Every response must be want.
func pipeBlast(tb testing.TB, urls []string, n, conns, depth int, key string, want int) float64 {
	tb.Helper()
	var left atomic.Int64
	left.Store(int64(n))
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		firstEr error
	)
	fail := func(err error) {
		mu.Lock()
		if firstEr == nil {
			firstEr = err
		}
		mu.Unlock()
	}
	start := time.Now()
	for c := range conns {
		u, err := url.Parse(urls[c%len(urls)])
		require.NoError(tb, err)
		req := []byte("GET " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host + "\r\nAuthorization: Bearer " + key + "\r\n\r\n")
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", u.Host)
			if err != nil {
				fail(err)
				return
			}
			defer conn.Close()
			r := bufio.NewReaderSize(conn, 64<<10)
			batch := make([]byte, 0, len(req)*depth)
			for {
				k := 0
				for k < depth && left.Add(-1) >= 0 {
					k++
				}
				if k == 0 {
					return
				}
				batch = batch[:0]
				for range k {
					batch = append(batch, req...)
				}
				if _, err := conn.Write(batch); err != nil {
					fail(err)
					return
				}
				for range k {
					if err := readResponse(r, want); err != nil {
						fail(err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start)
	require.NoError(tb, firstEr)
	return float64(n) / el.Seconds()
}

// readResponse reads one response (net/http's parser) and checks its
// status.
func readResponse(r *bufio.Reader, want int) error {
	res, err := http.ReadResponse(r, nil)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if err == nil && res.StatusCode != want {
		err = fmt.Errorf("status %s, want %d", res.Status, want)
	}
	return err
}

// pin binds every thread of process pid to cpu (taskset), so two daemons
// on one machine model two nodes of one core each. It reports false when
// the machine cannot (no taskset, or fewer CPUs).
func pin(tb testing.TB, pid, cpu int) bool {
	tb.Helper()
	if cpu >= nproc() {
		return false
	}
	out, err := exec.Command("taskset", "-a", "-p", "-c", strconv.Itoa(cpu), strconv.Itoa(pid)).CombinedOutput()
	if err != nil {
		tb.Logf("taskset: %v: %s", err, out)
		return false
	}
	return true
}
