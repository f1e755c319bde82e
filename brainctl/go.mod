module github.com/backendim/brain/brainctl

go 1.26.8

require (
	github.com/backendim/brain/proto v0.0.0
	github.com/coder/websocket v1.8.15
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/google/go-cmp v0.7.0
)

replace github.com/backendim/brain/proto => ../proto
