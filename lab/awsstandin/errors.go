package awsstandin

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
)

// apiError is an error answer in the service's own format.
type apiError struct {
	status int
	code   string
	msg    string
	// ARC's errors carry a reason and, for conflicts, the shift in the way.
	reason, zonalShiftID string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func writeError(w http.ResponseWriter, service string, e *apiError) {
	if rec, ok := w.(*statusRecorder); ok {
		rec.code = e.code
	}
	switch service {
	case ARC:
		body := map[string]string{"__type": e.code, "message": e.msg}
		if e.reason != "" {
			body["reason"] = e.reason
		}
		if e.zonalShiftID != "" {
			body["zonalShiftId"] = e.zonalShiftID
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Errortype", e.code)
		w.WriteHeader(e.status)
		_ = json.NewEncoder(w).Encode(body)
	case EC2:
		type ec2Err struct {
			XMLName   xml.Name `xml:"Response"`
			Code      string   `xml:"Errors>Error>Code"`
			Message   string   `xml:"Errors>Error>Message"`
			RequestID string   `xml:"RequestID"`
		}
		writeXML(w, e.status, ec2Err{Code: e.code, Message: e.msg, RequestID: requestID()})
	default:
		type queryErr struct {
			XMLName   xml.Name `xml:"ErrorResponse"`
			Type      string   `xml:"Error>Type"`
			Code      string   `xml:"Error>Code"`
			Message   string   `xml:"Error>Message"`
			RequestID string   `xml:"RequestId"`
		}
		kind := "Sender"
		if e.status >= 500 {
			kind = "Receiver"
		}
		writeXML(w, e.status, queryErr{Type: kind, Code: e.code, Message: e.msg, RequestID: requestID()})
	}
}

func writeXML(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "text/xml")
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_ = xml.NewEncoder(w).Encode(v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// guessService names the service of an unsigned request, for its error's format.
func guessService(r *http.Request, body []byte) string {
	if strings.HasPrefix(r.URL.Path, "/zonalshifts") || strings.HasPrefix(r.URL.Path, "/managedresources") {
		return ARC
	}
	if v, _ := url.ParseQuery(string(body)); v.Get("Version") == ec2Version {
		return EC2
	}
	return AutoScaling
}

// actionOf names the API action of a request.
func actionOf(service string, r *http.Request, body []byte) string {
	if service != ARC {
		v, _ := url.ParseQuery(string(body))
		return v.Get("Action")
	}
	switch {
	case r.Method == http.MethodPost && r.URL.Path == "/zonalshifts":
		return "StartZonalShift"
	case r.Method == http.MethodGet && r.URL.Path == "/zonalshifts":
		return "ListZonalShifts"
	case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/zonalshifts/"):
		return "UpdateZonalShift"
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, "/zonalshifts/"):
		return "CancelZonalShift"
	case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/managedresources/"):
		return "GetManagedResource"
	}
	return r.Method + " " + r.URL.Path
}
