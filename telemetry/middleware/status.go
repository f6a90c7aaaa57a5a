package middleware

import "net/http"

// StatusWriter is an http.ResponseWriter that remembers the status code the
// handler sent, for the request's outcome (observation.FromStatus), its
// metrics and its log line. Code is 0 until the handler writes. It passes Flush on and
// unwraps for http.ResponseController. The middleware, the API and the
// lab's workload all count their answers with it (it lives here, not in
// telemetry/observation, so that the engine's vocabulary stays free of
// net/http).
type StatusWriter struct {
	http.ResponseWriter
	Code int
}

func (w *StatusWriter) WriteHeader(code int) {
	if w.Code == 0 {
		w.Code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *StatusWriter) Write(b []byte) (int, error) {
	if w.Code == 0 {
		w.Code = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Status is the code sent, or 200 when the handler wrote nothing (net/http
// then sends 200).
func (w *StatusWriter) Status() int {
	if w.Code == 0 {
		return http.StatusOK
	}
	return w.Code
}

func (w *StatusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *StatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
