package proto

// WebSocket close codes a gateway sends. 1000-1011 are RFC 6455's; 4000-4999 are Brain's own.
// Reconnect tells a client whether opening a new connection (to any replica) is the right reaction;
// after a close a client resumes each chat with {"type":"subscribe","chatId":…,"after":<last seq>}.
const (
	CloseNormal      = 1000 // the client closed; no reconnect needed
	CloseGoingAway   = 1001 // this replica is shutting down; reconnect at once (another replica answers)
	CloseTooBig      = 1009 // a frame was over MaxFrameBytes; reconnect, and send smaller messages
	CloseInternal    = 4000 // unexpected server failure; reconnect with backoff
	CloseTokenExpire = 4001 // the token's exp passed; reconnect with a fresh token
	CloseSlowClient  = 4008 // the client did not read its events fast enough; reconnect and resume with "after"
	CloseFlood       = 4029 // the client sent messages faster than allowed; reconnect after a pause
)

// CloseCode describes one close code for documentation.
type CloseCode struct {
	Code      int
	Reason    string
	Reconnect bool
}

// CloseCodes lists the close codes a gateway may send.
func CloseCodes() []CloseCode {
	return []CloseCode{
		{CloseNormal, "normal closure", false},
		{CloseGoingAway, "server shutting down", true},
		{CloseTooBig, "message too big", true},
		{CloseInternal, "internal error", true},
		{CloseTokenExpire, "token expired", true},
		{CloseSlowClient, "client too slow", true},
		{CloseFlood, "too many messages", true},
	}
}

// Limits on what a client may send.
const (
	MaxFrameBytes   = 64 << 10 // a larger frame closes the connection with CloseTooBig
	MaxRepoURLLen   = 2048
	MaxRefLen       = 255
	MaxRequestIDLen = 128
	MaxPathLen      = 512
)
