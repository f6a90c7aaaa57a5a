package awsstandin

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// sigInfo is what the Authorization header says.
type sigInfo struct {
	accessKey, date, region, service string
	signedHeaders                    []string
	signature                        string
}

// maxSkew is how far a request's X-Amz-Date may be from now, as in AWS.
const maxSkew = 15 * time.Minute

// verify checks the request's SigV4 signature by signing the same request
// again with the SDK's signer and the known secret, and comparing.
func (s *Server) verify(r *http.Request, body []byte) (sigInfo, *apiError) {
	denied := func(code, msg string) *apiError { return &apiError{status: 403, code: code, msg: msg} }
	auth := r.Header.Get("Authorization")
	const algo = "AWS4-HMAC-SHA256 "
	if !strings.HasPrefix(auth, algo) {
		return sigInfo{}, denied("MissingAuthenticationToken", "Request is missing Authentication Token")
	}
	var si sigInfo
	for _, part := range strings.Split(strings.TrimPrefix(auth, algo), ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			f := strings.Split(v, "/")
			if len(f) != 5 || f[4] != "aws4_request" {
				return si, denied("IncompleteSignature", "Authorization header requires a well-formed Credential")
			}
			si.accessKey, si.date, si.region, si.service = f[0], f[1], f[2], f[3]
		case "SignedHeaders":
			si.signedHeaders = strings.Split(v, ";")
		case "Signature":
			si.signature = v
		}
	}
	if si.accessKey == "" || si.signature == "" || len(si.signedHeaders) == 0 {
		return si, denied("IncompleteSignature", "Authorization header requires Credential, SignedHeaders and Signature")
	}
	if si.accessKey != s.o.AccessKeyID {
		code := "UnrecognizedClientException"
		if si.service != ARC {
			code = "InvalidClientTokenId"
		}
		return si, denied(code, "The security token included in the request is invalid.")
	}
	if si.region != s.o.Region {
		return si, denied(sigMismatch(si.service), "Credential should be scoped to a valid region, not '"+si.region+"'.")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return si, denied("IncompleteSignature", "X-Amz-Date is missing or malformed")
	}
	// The signer reads the wall clock, so skew is checked against it too.
	if d := time.Since(at); d > maxSkew || d < -maxSkew {
		return si, denied(sigMismatch(si.service), "Signature expired: "+at.Format(time.RFC3339)+" is not within 15 minutes of the server's time")
	}
	if !slices.Contains(si.signedHeaders, "host") {
		return si, denied(sigMismatch(si.service), "'Host' must be a signed header")
	}
	// Rebuild the request from exactly the headers the client signed.
	again := &http.Request{Method: r.Method, Host: r.Host, Header: http.Header{},
		URL: &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}}
	for _, h := range si.signedHeaders {
		switch h {
		case "host":
		case "content-length":
			again.ContentLength = r.ContentLength
		default:
			again.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: s.o.AccessKeyID, SecretAccessKey: s.o.SecretAccessKey, SessionToken: r.Header.Get("X-Amz-Security-Token")}
	if err := v4.NewSigner().SignHTTP(r.Context(), creds, again, hex.EncodeToString(sum[:]), si.service, si.region, at); err != nil {
		return si, denied(sigMismatch(si.service), err.Error())
	}
	want := ""
	for _, part := range strings.Split(strings.TrimPrefix(again.Header.Get("Authorization"), algo), ",") {
		if k, v, _ := strings.Cut(strings.TrimSpace(part), "="); k == "Signature" {
			want = v
		}
	}
	if subtle.ConstantTimeCompare([]byte(want), []byte(si.signature)) != 1 {
		return si, denied(sigMismatch(si.service), "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return si, nil
}

// sigMismatch is the service's error code for a bad signature.
func sigMismatch(service string) string {
	if service == ARC {
		return "InvalidSignatureException"
	}
	return "SignatureDoesNotMatch"
}
