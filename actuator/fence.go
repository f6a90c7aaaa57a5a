package actuator

import "context"

// A fencing token is the epoch of the leadership an order was given under
// (see server/leader). Every actuation carries it, so that an actuator that
// has seen orders from epoch N refuses a late one from a deposed leader of
// epoch N-1: two leaders' orders never both take effect.

type fenceKey struct{}

// WithFence returns ctx carrying the fencing token.
func WithFence(ctx context.Context, token uint64) context.Context {
	return context.WithValue(ctx, fenceKey{}, token)
}

// FenceFrom returns the fencing token ctx carries, and whether it carries one.
func FenceFrom(ctx context.Context) (uint64, bool) {
	t, ok := ctx.Value(fenceKey{}).(uint64)
	return t, ok
}
