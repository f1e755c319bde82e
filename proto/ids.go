package proto

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// MaxIDLen is the longest userId or chatId.
const MaxIDLen = 64

// ValidID reports whether s is a valid userId or chatId: 1 to 64 of [A-Za-z0-9_-]. Such IDs are
// safe as NATS subject tokens and key-value keys.
func ValidID(s string) bool {
	if len(s) == 0 || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !idByte(s[i]) {
			return false
		}
	}
	return true
}

func idByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// NewJobID returns a fresh random job ID: 32 lowercase hex digits.
func NewJobID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// RequestJobID derives the job ID of a deploy request that carries an idempotency key, so the same
// user and requestId always name the same job, on any gateway replica.
func RequestJobID(userID, requestID string) string {
	sum := sha256.Sum256([]byte(userID + "\x00" + requestID))
	return hex.EncodeToString(sum[:16])
}

// ValidJobID reports whether s has the form of a job ID.
func ValidJobID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Namespace returns the Kubernetes namespace of a chat: "im-<chatId>-<userId>".
//
// The name is used as is when both IDs are lowercase letters and digits and it fits in 63
// characters. Otherwise (upper case, '_' or '-' in an ID, or too long) it is lower-cased, '_'
// becomes '-', it is cut to leave room, and "-" plus 10 hex digits of a hash of the exact pair is
// appended, so two different chats never share a namespace: a name without the suffix has exactly
// two dashes, one with it has at least three.
func Namespace(chatID, userID string) string {
	plain := "im-" + chatID + "-" + userID
	if len(plain) <= 63 && simpleID(chatID) && simpleID(userID) {
		return plain
	}
	sum := sha256.Sum256([]byte(userID + "/" + chatID))
	suffix := "-" + hex.EncodeToString(sum[:5])
	base := strings.ToLower(strings.ReplaceAll(plain, "_", "-"))
	if len(base) > 63-len(suffix) {
		base = base[:63-len(suffix)]
	}
	return strings.TrimRight(base, "-") + suffix
}

func simpleID(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}
