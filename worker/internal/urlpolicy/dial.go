package urlpolicy

import (
	"context"
	"net"
	"net/netip"
	"syscall"

	"github.com/backendim/brain/proto"
)

// DialContext returns a dial function for http.Transport.DialContext that connects like d but
// refuses, unless AllowPrivateNetworks is set, any address Refused names. The check runs on the
// address about to be connected, after DNS resolution, for every connection (each redirect and
// each retry too), so a name that resolves to a public address for Check and to a private one
// later (DNS rebinding) is still refused. A refusal is a *proto.Error with code
// proto.CodeURLRefused, wrapped in the *net.OpError the dialer returns. d is not modified.
func (p Policy) DialContext(d *net.Dialer) func(ctx context.Context, network, addr string) (net.Conn, error) {
	base := *d
	if p.AllowPrivateNetworks {
		return base.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		dd := base
		prevCtx, prev := base.ControlContext, base.Control
		dd.Control = nil
		dd.ControlContext = func(ctx context.Context, network, address string, c syscall.RawConn) error {
			if err := checkDialed(addr, address); err != nil {
				return err
			}
			switch {
			case prevCtx != nil:
				return prevCtx(ctx, network, address, c)
			case prev != nil:
				return prev(network, address, c)
			}
			return nil
		}
		return dd.DialContext(ctx, network, addr)
	}
}

// checkDialed judges address, the ip:port about to be connected for the requested addr.
func checkDialed(requested, address string) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return proto.Errorf(proto.CodeURLRefused, "cannot check the address %q of %s", address, requested)
	}
	if why := Refused(ap.Addr()); why != "" {
		host, _, splitErr := net.SplitHostPort(requested)
		if splitErr != nil {
			host = requested
		}
		return proto.Errorf(proto.CodeURLRefused,
			"%s resolves to %s, a %s address; repositories must be on public hosts (the operator allows private networks with %s=true)",
			host, ap.Addr().WithZone(""), why, EnvAllowPrivateNetworks)
	}
	return nil
}
