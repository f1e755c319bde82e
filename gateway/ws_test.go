package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/backendim/brain/proto"
	"github.com/backendim/brain/proto/natsauth"
	"github.com/coder/websocket"
	"github.com/google/go-cmp/cmp"
)

func TestOriginalMessageIsQueued(t *testing.T) {
	g := startGateway(t, nil, nil)
	w := newNATSWorker(t, g)
	c := dial(t, g, token(t, "u1", time.Hour))
	c.send([]byte(`{"userId":"u1","chatId":"c1","repoURL":"https://git.example.com/org/app.git","commitHash":"a1b2c3d4e5"}`))
	m := c.read()
	if m.Type != proto.TypeProgress || m.Stage != proto.StageQueued || !proto.ValidJobID(m.JobID) || m.Seq == 0 {
		t.Fatalf("first message = %+v, want queued progress with jobId and seq", m)
	}
	entry, err := w.kv.Get(context.Background(), m.JobID)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := proto.DecodeJobStatus(entry.Value())
	want := proto.JobStatus{Job: proto.Job{JobID: m.JobID, UserID: "u1", ChatID: "c1", RepoURL: "https://git.example.com/org/app.git",
		CommitHash: "a1b2c3d4e5", SubmittedAt: st.SubmittedAt}, State: proto.StateQueued, Published: true, FirstSeq: m.Seq}
	if diff := cmp.Diff(want, st); diff != "" {
		t.Errorf("job status (-want +got):\n%s", diff)
	}
	if n := w.jobCount(); n != 1 {
		t.Errorf("BRAIN_JOBS holds %d jobs, want 1", n)
	}
	latest, err := w.kv.Get(context.Background(), proto.ChatKey("u1", "c1"))
	if err != nil || string(latest.Value()) != m.JobID {
		t.Errorf("chat key = %v, %v; want %s", latest, err, m.JobID)
	}
}

func TestBadMessagesGetErrorsAndSocketStaysUsable(t *testing.T) {
	g := startGateway(t, nil, nil)
	c := dial(t, g, token(t, "u1", time.Hour))
	tests := []struct {
		name  string
		frame string
		code  proto.Code
		text  string
	}{
		{"not json", `{"userId":`, proto.CodeBadRequest, "not valid JSON"},
		{"array", `[1,2]`, proto.CodeBadRequest, "JSON object"},
		{"two objects", `{"type":"status","chatId":"c1"} {}`, proto.CodeBadRequest, "exactly one"},
		{"unknown field", `{"chatId":"c1","commit":"x"}`, proto.CodeBadRequest, `"commit"`},
		{"unknown type", `{"type":"explode"}`, proto.CodeBadRequest, "unknown type"},
		{"missing repo", `{"chatId":"c1","commitHash":"main"}`, proto.CodeInvalidField, "repoURL is required"},
		{"bad chat id", `{"chatId":"c 1","repoURL":"https://h/r","commitHash":"main"}`, proto.CodeInvalidField, "chatId"},
		{"file url", `{"chatId":"c1","repoURL":"file:///etc","commitHash":"main"}`, proto.CodeInvalidField, "scheme"},
		{"credentials in url", `{"chatId":"c1","repoURL":"https://u:p@h/r","commitHash":"main"}`, proto.CodeInvalidField, "credentials"},
		{"bad ref", `{"chatId":"c1","repoURL":"https://h/r","commitHash":"a..b"}`, proto.CodeInvalidField, "commitHash"},
		{"path escape", `{"chatId":"c1","repoURL":"https://h/r","commitHash":"main","path":"../x"}`, proto.CodeInvalidField, "path"},
		{"wrong type", `{"chatId":1}`, proto.CodeInvalidField, `"chatId"`},
		{"another user", `{"userId":"u2","chatId":"c1","repoURL":"https://h/r","commitHash":"main"}`, proto.CodeForbidden, "u2"},
		{"cancel bad id", `{"type":"cancel","jobId":"nope"}`, proto.CodeInvalidField, "jobId"},
		{"cancel unknown", `{"type":"cancel","jobId":"00000000000000000000000000000000"}`, proto.CodeJobNotFound, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.send([]byte(tt.frame))
			m := c.read()
			if m.Type != proto.TypeError || m.Code != tt.code || !strings.Contains(m.Message, tt.text) {
				t.Errorf("got %s %q %q, want error %s containing %q", m.Type, m.Code, m.Message, tt.code, tt.text)
			}
			if m.Retryable == nil || *m.Retryable != tt.code.Retryable() {
				t.Errorf("retryable = %v, want %v", m.Retryable, tt.code.Retryable())
			}
		})
	}
	// Binary frames are refused too, and afterwards the socket still answers.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageBinary, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if m := c.read(); m.Code != proto.CodeBadRequest {
		t.Errorf("binary frame: got %+v", m)
	}
	c.send(map[string]any{"type": "status", "chatId": "c1"})
	if m := c.read(); m.Type != proto.TypeStatusInfo || m.Message != "no jobs for this chat" {
		t.Errorf("status after errors = %+v", m)
	}
}

func TestOversizeFrameClosesWith1009(t *testing.T) {
	g := startGateway(t, nil, nil)
	c := dial(t, g, token(t, "u1", time.Hour))
	big := `{"chatId":"c1","repoURL":"https://h/r","commitHash":"main","path":"` + strings.Repeat("a", proto.MaxFrameBytes) + `"}`
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.ws.Write(ctx, websocket.MessageText, []byte(big))
	_, err := c.readErr(5 * time.Second)
	if code := closeCode(err); code != proto.CloseTooBig {
		t.Fatalf("close code = %d (%v), want %d", code, err, proto.CloseTooBig)
	}
}

func TestAuthentication(t *testing.T) {
	g := startGateway(t, nil, nil)
	forged := token(t, "u1", time.Hour)
	forged = forged[:len(forged)-4] + "AAAA"
	tests := []struct {
		name   string
		header string
		query  string
		status int
	}{
		{"missing", "", "", http.StatusUnauthorized},
		{"forged signature", "Bearer " + forged, "", http.StatusUnauthorized},
		{"expired", "Bearer " + token(t, "u1", -time.Hour), "", http.StatusUnauthorized},
		{"not bearer", "Basic dTE6cA==", "", http.StatusUnauthorized},
		{"alg none", "Bearer eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ1MSIsImV4cCI6OTk5OTk5OTk5OX0.", "", http.StatusUnauthorized},
		{"bad sub", "Bearer " + token(t, "u 1", time.Hour), "", http.StatusUnauthorized},
		{"header", "Bearer " + token(t, "u1", time.Hour), "", http.StatusSwitchingProtocols},
		{"query", "", "?access_token=" + token(t, "u1", time.Hour), http.StatusSwitchingProtocols},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			h := http.Header{}
			if tt.header != "" {
				h.Set("Authorization", tt.header)
			}
			c, resp, err := websocket.Dial(ctx, "ws://"+g.addr+"/ws"+tt.query, &websocket.DialOptions{HTTPHeader: h})
			if c != nil {
				defer c.CloseNow()
			}
			if resp == nil {
				t.Fatalf("no response: %v", err)
			}
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d (%v)", resp.StatusCode, tt.status, err)
			}
			if tt.status == http.StatusUnauthorized {
				body, _ := io.ReadAll(resp.Body)
				var m proto.Message
				if json.Unmarshal(body, &m) != nil || m.Code != proto.CodeUnauthorized {
					t.Errorf("body = %s, want an unauthorized error message", body)
				}
			}
		})
	}
}

func TestTokenExpiryClosesWith4001(t *testing.T) {
	g := startGateway(t, nil, nil)
	// Accepted thanks to the 30 s leeway, expiring one second from now.
	c := dial(t, g, token(t, "u1", -29*time.Second))
	_, err := c.readErr(10 * time.Second)
	if code := closeCode(err); code != proto.CloseTokenExpire {
		t.Fatalf("close = %d (%v), want %d", code, err, proto.CloseTokenExpire)
	}
}

func TestUsersSeeOnlyTheirOwnChats(t *testing.T) {
	g := startGateway(t, nil, nil)
	w := newNATSWorker(t, g)
	w.publish("alice", proto.Message{Type: proto.TypeProgress, ChatID: "c1", JobID: strings.Repeat("a", 32), Message: "alice's secret"})
	bob := dial(t, g, token(t, "bob", time.Hour))
	bob.send(map[string]any{"type": "subscribe", "chatId": "c1"})
	if m := bob.read(); m.Type != proto.TypeSubscribed {
		t.Fatalf("got %+v, want subscribed", m)
	}
	w.publish("alice", proto.Message{Type: proto.TypeProgress, ChatID: "c1", Message: "alice's second"})
	marker := w.publish("bob", proto.Message{Type: proto.TypeProgress, ChatID: "c1", Message: "bob's own"})
	if m := bob.read(); m.Seq != marker || m.Message != "bob's own" {
		t.Fatalf("bob got %+v, want only his own event %d", m, marker)
	}
	bob.send(map[string]any{"type": "cancel", "jobId": strings.Repeat("a", 32)})
	if m := bob.read(); m.Code != proto.CodeJobNotFound {
		t.Errorf("cancel of a job id bob does not own = %+v", m)
	}
}

func TestSubscribeReplaysThenGoesLiveWithoutGapOrDuplicate(t *testing.T) {
	g := startGateway(t, nil, nil)
	w := newNATSWorker(t, g)
	var first uint64
	for i := range 20 {
		s := w.publish("u1", proto.Message{Type: proto.TypeProgress, ChatID: "c1", Message: "early"})
		if i == 0 {
			first = s
		}
	}
	// Keep publishing while the client subscribes, so the switch from replay to live happens
	// while events arrive.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 200 {
			w.publish("u1", proto.Message{Type: proto.TypeProgress, ChatID: "c1", Message: "live"})
		}
	}()
	c := dial(t, g, token(t, "u1", time.Hour))
	after := first + 9
	c.send(map[string]any{"type": "subscribe", "chatId": "c1", "after": after})
	if m := c.read(); m.Type != proto.TypeSubscribed || m.After != after {
		t.Fatalf("got %+v, want subscribed after %d", m, after)
	}
	wg.Wait()
	want := after + 1
	for want <= first+219 {
		m := c.read()
		if m.Seq != want {
			t.Fatalf("seq %d, want %d: a gap or a duplicate", m.Seq, want)
		}
		want++
	}
}

func TestRepeatedRequestIDStartsOneJob(t *testing.T) {
	g1 := startGateway(t, nil, nil)
	g2 := startGateway(t, g1, nil)
	w := newNATSWorker(t, g1)
	req := deployMsg("u1", "c1")
	req["requestId"] = "r-42"
	c1 := dial(t, g1, token(t, "u1", time.Hour))
	c1.send(req)
	first := c1.read()
	c2 := dial(t, g2, token(t, "u1", time.Hour))
	c2.send(req)
	dup := c2.read()
	if !dup.Duplicate || dup.JobID != first.JobID || dup.RequestID != "r-42" {
		t.Fatalf("second submit = %+v, want duplicate of %s", dup, first.JobID)
	}
	if replay := c2.read(); replay.Seq != first.Seq || replay.JobID != first.JobID {
		t.Errorf("after the duplicate notice got %+v, want the original queued event %d", replay, first.Seq)
	}
	if n := w.jobCount(); n != 1 {
		t.Errorf("BRAIN_JOBS holds %d jobs, want 1", n)
	}
	// Another user's identical requestId is another job.
	c3 := dial(t, g2, token(t, "u2", time.Hour))
	req["userId"] = "u2"
	c3.send(req)
	if m := c3.read(); m.Duplicate || m.JobID == first.JobID {
		t.Errorf("u2's request = %+v, want a job of its own", m)
	}
}

func TestStatusAndCancel(t *testing.T) {
	g := startGateway(t, nil, nil)
	w := newNATSWorker(t, g)
	c := dial(t, g, token(t, "u1", time.Hour))
	c.send(deployMsg("u1", "c1"))
	queued := c.read()
	w.publish("u1", proto.Message{Type: proto.TypeProgress, ChatID: "c1", JobID: queued.JobID, Stage: proto.StageStarted})
	c.read()

	c.send(map[string]any{"type": "status", "chatId": "c1"})
	st := c.read()
	if st.Type != proto.TypeStatusInfo || st.Job == nil || st.Job.JobID != queued.JobID || len(st.Events) != 2 ||
		st.Events[0].Seq != queued.Seq || st.Events[1].Stage != proto.StageStarted {
		t.Fatalf("status = %+v", st)
	}

	other := dial(t, g, token(t, "u2", time.Hour))
	other.send(map[string]any{"type": "cancel", "jobId": queued.JobID})
	if m := other.read(); m.Code != proto.CodeForbidden {
		t.Errorf("u2 cancelling u1's job = %+v, want forbidden", m)
	}

	c.send(map[string]any{"type": "cancel", "jobId": queued.JobID})
	// The reply and the relayed final event may come in either order.
	reply, final := c.read(), c.read()
	if reply.Type != proto.TypeStatusInfo {
		reply, final = final, reply
	}
	if reply.Type != proto.TypeStatusInfo || reply.Job.State != proto.StateCancelled {
		t.Fatalf("cancel reply = %+v", reply)
	}
	if final.Type != proto.TypeError || final.Code != proto.CodeCancelled || final.JobID != queued.JobID || final.Seq == 0 {
		t.Fatalf("final = %+v, want error cancelled", final)
	}
	c.send(map[string]any{"type": "cancel", "jobId": queued.JobID})
	if m := c.read(); m.Code != proto.CodeJobFinished {
		t.Errorf("second cancel = %+v, want job_finished", m)
	}
}

func TestCancelRunningJobMarksIt(t *testing.T) {
	g := startGateway(t, nil, nil)
	w := newNATSWorker(t, g)
	c := dial(t, g, token(t, "u1", time.Hour))
	c.send(deployMsg("u1", "c1"))
	queued := c.read()
	ctx := context.Background()
	entry, _ := w.kv.Get(ctx, queued.JobID)
	st, _ := proto.DecodeJobStatus(entry.Value())
	st.State = proto.StateRunning
	b, _ := json.Marshal(st)
	if _, err := w.kv.Update(ctx, queued.JobID, b, entry.Revision()); err != nil {
		t.Fatal(err)
	}
	c.send(map[string]any{"type": "cancel", "jobId": queued.JobID})
	reply := c.read()
	if reply.Job == nil || reply.Job.State != proto.StateRunning || !reply.Job.CancelRequested {
		t.Fatalf("cancel reply = %+v, want running with cancelRequested", reply.Job)
	}
	entry, _ = w.kv.Get(ctx, queued.JobID)
	if st, _ := proto.DecodeJobStatus(entry.Value()); !st.CancelRequested {
		t.Error("KV entry not marked cancelRequested")
	}
}

func TestJobRateLimit(t *testing.T) {
	g := startGateway(t, nil, map[string]string{"RATE_JOBS_PER_MINUTE": "1", "RATE_JOBS_BURST": "2"})
	c := dial(t, g, token(t, "u1", time.Hour))
	for i := range 3 {
		c.send(deployMsg("u1", "c"+string(rune('1'+i))))
		m := c.read()
		if limited := m.Code == proto.CodeRateLimited; limited != (i == 2) {
			t.Fatalf("job %d: %+v", i, m)
		}
	}
}

func TestClientSwitchingGatewaysResumesWithoutLossOrRepeat(t *testing.T) {
	g1 := startGateway(t, nil, nil)
	g2 := startGateway(t, g1, nil)
	w := newNATSWorker(t, g1)
	c1 := dial(t, g1, token(t, "u1", time.Hour))
	c1.send(deployMsg("u1", "c1"))
	queued := c1.read()
	seqs := []uint64{queued.Seq}
	for _, st := range []proto.Stage{proto.StageStarted, proto.StageFetching} {
		w.publish("u1", proto.Message{Type: proto.TypeProgress, ChatID: "c1", JobID: queued.JobID, Stage: st})
		seqs = append(seqs, c1.read().Seq)
	}
	c1.ws.Close(websocket.StatusNormalClosure, "moving")
	// Events published while the client has no socket.
	w.publish("u1", proto.Message{Type: proto.TypeProgress, ChatID: "c1", JobID: queued.JobID, Stage: proto.StageCheckedOut})
	c2 := dial(t, g2, token(t, "u1", time.Hour))
	c2.send(map[string]any{"type": "subscribe", "chatId": "c1", "after": seqs[len(seqs)-1]})
	c2.read() // subscribed
	w.publish("u1", proto.Message{Type: proto.TypeSuccess, ChatID: "c1", JobID: queued.JobID})
	for _, m := range c2.until(func(m proto.Message) bool { return m.Final() }) {
		seqs = append(seqs, m.Seq)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] != seqs[i-1]+1 {
			t.Fatalf("seqs %v: lost or repeated event", seqs)
		}
	}
	if len(seqs) != 5 {
		t.Errorf("seqs %v, want 5 events", seqs)
	}
}

func TestSlowClientIsDisconnectedWithoutStallingOthers(t *testing.T) {
	g := startGateway(t, nil, map[string]string{"WS_SEND_QUEUE": "8", "WS_WRITE_TIMEOUT": "1s"})
	w := newNATSWorker(t, g)
	slow := dial(t, g, token(t, "u1", time.Hour))
	fast := dial(t, g, token(t, "u1", time.Hour))
	for _, c := range []*client{slow, fast} {
		c.send(map[string]any{"type": "subscribe", "chatId": "c1"})
		c.read()
	}
	big := strings.Repeat("x", 32<<10)
	const n = 400 // 12.8 MB: more than the slow client's socket buffers hold
	for range n {
		// The fast client gets every event while the slow one reads nothing.
		seq := w.publish("u1", proto.Message{Type: proto.TypeProgress, ChatID: "c1", Message: big})
		if m := fast.read(); m.Seq != seq {
			t.Fatalf("fast client got seq %d, want %d", m.Seq, seq)
		}
	}
	// The slow client, reading now, finds its socket closed before the end of the stream.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := 0
	for {
		_, _, err := slow.ws.Read(ctx)
		if err != nil {
			if code := closeCode(err); code != proto.CloseSlowClient && code != -1 {
				t.Errorf("close code %d (%v), want %d or a dropped connection", code, err, proto.CloseSlowClient)
			}
			break
		}
		if got++; got >= n {
			t.Fatal("slow client received every event: it was never disconnected")
		}
	}
	resp, err := http.Get("http://" + g.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "brain_gateway_slow_client_disconnects_total 0") ||
		!strings.Contains(string(body), "brain_gateway_slow_client_disconnects_total ") {
		t.Errorf("metrics do not count the slow client:\n%s", grep(string(body), "slow_client"))
	}
}

func TestShutdownClosesSocketsWith1001(t *testing.T) {
	g := startGateway(t, nil, nil)
	c := dial(t, g, token(t, "u1", time.Hour))
	c.send(map[string]any{"type": "status", "chatId": "c1"})
	c.read()
	g.stop()
	_, err := c.readErr(10 * time.Second)
	if code := closeCode(err); code != proto.CloseGoingAway {
		t.Fatalf("close = %d (%v), want 1001", code, err)
	}
}

func TestConflictingStreamConfigIsAStartupError(t *testing.T) {
	g := startGateway(t, nil, nil)
	vars := map[string]string{"LISTEN_ADDR": freeAddr(t), "NATS_URL": g.natsURL, "NATS_NKEY_FILE": g.seed(natsauth.Gateway),
		"AUTH_MODE": "none", "EVENTS_MAX_AGE": "1h"}
	err := run(context.Background(), nil, func(k string) string { return vars[k] }, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "max_age") || !strings.Contains(err.Error(), proto.EventsStream) {
		t.Fatalf("err = %v, want a conflict naming BRAIN_EVENTS max_age", err)
	}
}

func grep(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestTooManyChatsIsRefusedBeforeSubmitting(t *testing.T) {
	g := startGateway(t, nil, map[string]string{"WS_MAX_CHATS": "2"})
	w := newNATSWorker(t, g)
	c := dial(t, g, token(t, "u1", time.Hour))
	for _, chat := range []string{"a", "b", "a"} {
		c.send(deployMsg("u1", chat))
		if m := c.read(); m.Stage != proto.StageQueued {
			t.Fatalf("deploy to %s = %+v", chat, m)
		}
	}
	c.send(deployMsg("u1", "c"))
	if m := c.read(); m.Code != proto.CodeTooManyChats {
		t.Fatalf("deploy to a third chat = %+v, want too_many_chats", m)
	}
	if n := w.jobCount(); n != 3 {
		t.Errorf("BRAIN_JOBS holds %d jobs, want 3: the refused one must not run", n)
	}
	c.send(map[string]any{"type": "subscribe", "chatId": "d"})
	if m := c.read(); m.Code != proto.CodeTooManyChats {
		t.Fatalf("subscribe to a third chat = %+v, want too_many_chats", m)
	}
}
