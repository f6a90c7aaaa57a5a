package observation

import "strings"

// OperationOf is the operation of a request path, its first segment:
// "/orders/7" → "orders". Proxies that see paths, not operations (the
// embedded front door, HAProxy's logs), name operations this way.
func OperationOf(path string) string {
	path = strings.TrimPrefix(path, "/")
	if i := strings.IndexAny(path, "/?"); i >= 0 {
		path = path[:i]
	}
	return path
}
