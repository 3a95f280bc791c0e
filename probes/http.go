package probes

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"time"
)

// maxCallBody bounds how much of a /call upstream response is relayed.
const maxCallBody = 1 << 20

// HTTPInfo is the JSON body of the HTTP server's / endpoint.
type HTTPInfo struct {
	Hostname string `json:"hostname"`
	Remote   string `json:"remote"`
	Local    string `json:"local,omitempty"`
	Path     string `json:"path"`
}

// CallError is the JSON body /call returns when the upstream cannot be fetched.
type CallError struct {
	URL   string    `json:"url"`
	Error string    `json:"error"`
	Kind  ErrorKind `json:"error_kind"`
}

func newHTTPServer(cfg ServeConfig) *http.Server {
	host := cfg.Hostname
	if host == "" {
		host, _ = os.Hostname()
	}
	client := &http.Client{
		Timeout: cfg.CallTimeout,
		// A probe must reach exactly the node it was told to, never a proxy from the
		// environment, and must not follow redirects elsewhere.
		Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("/call", func(w http.ResponseWriter, r *http.Request) {
		handleCall(w, r, client)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		info := HTTPInfo{Hostname: host, Remote: r.RemoteAddr, Path: r.URL.Path}
		if a, ok := r.Context().Value(http.LocalAddrContextKey).(interface{ String() string }); ok {
			info.Local = a.String()
		}
		writeJSON(w, http.StatusOK, info)
	})
	return &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
}

// handleCall fetches the http:// URL given in ?url= and relays its status and body. It is
// the middle tier of a client→web→backend scenario.
func handleCall(w http.ResponseWriter, r *http.Request, client *http.Client) {
	target := r.URL.Query().Get("url")
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "http" || u.Host == "" {
		writeJSON(w, http.StatusBadRequest, CallError{URL: target, Kind: KindOther,
			Error: "url must be an absolute http:// URL"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), client.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, CallError{URL: target, Kind: KindOther,
			Error: err.Error()})
		return
	}
	resp, err := client.Do(req)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, CallError{URL: target, Kind: Classify(err),
			Error: fmt.Sprintf("get %s: %v", target, err)})
		return
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "" {
		w.Header().Set("Content-Type", ct)
	}
	w.WriteHeader(resp.StatusCode)
	_, _ = io.Copy(w, io.LimitReader(resp.Body, maxCallBody))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
