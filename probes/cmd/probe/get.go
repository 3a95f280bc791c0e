package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"time"
)

const getIntro = `Usage: probe get --url URL [flags]

HTTP GET of one URL, the name resolved by this node's own resolver (/etc/resolv.conf, in
pure Go: no libc, so it works in a static FROM-scratch image and a minimal VM alike). Prints
{"url", "status", "body", "ms"} and exits 0 for any HTTP answer; 1 when no answer came.
Used for calls by DNS name across the lab (client -> web -> backend via serve's /call).`

// getResult is what `probe get` prints.
type getResult struct {
	URL    string  `json:"url"`
	Status int     `json:"status"`
	Body   string  `json:"body"`
	Ms     float64 `json:"ms"`
}

// maxBody bounds what `probe get` keeps of a reply.
const maxBody = 64 << 10

func runGet(ctx context.Context, args []string, stdout io.Writer) error {
	var url string
	var timeout time.Duration
	fs := flag.NewFlagSet("get", flag.ContinueOnError)
	fs.StringVar(&url, "url", "", "http:// URL (required)")
	fs.DurationVar(&timeout, "timeout", 5*time.Second, "time for the whole request")
	if err := parseFlags(fs, args, stdout, getIntro); err != nil {
		return err
	}
	if url == "" {
		return exitUsage{errors.New("--url is required")}
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return exitUsage{err}
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("get %s: %w", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("read %s: %w", url, err)
	}
	return writeJSON(stdout, getResult{URL: url, Status: resp.StatusCode, Body: string(body),
		Ms: float64(time.Since(start).Microseconds()) / 1000})
}
