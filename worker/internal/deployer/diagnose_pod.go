package deployer

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/backendim/brain/proto"
)

// maxQuote bounds text quoted from the cluster: a termination message, a kubelet's or the
// scheduler's message. Tenant code writes the first, so it is also scrubbed (see clean).
const maxQuote = 400

// fatal is a pod problem that ends the wait.
type fatal struct {
	code proto.Code
	text string
}

// podProblems describes what keeps pods from being ready, one line per distinct problem (pods
// that share one are named together), and the first problem that cannot pass by itself.
func podProblems(pods []corev1.Pod, lim limits) ([]string, *fatal) {
	var order []string
	names := map[string][]string{}
	var first *fatal
	for _, p := range pods {
		text, f := podProblem(p, lim)
		if text == "" {
			continue
		}
		if _, ok := names[text]; !ok {
			order = append(order, text)
		}
		names[text] = append(names[text], p.Name)
		if f != nil && first == nil {
			first = &fatal{code: f.code, text: "pod " + p.Name + ": " + f.text}
		}
	}
	var out []string
	for i, text := range order {
		if i == maxProblems {
			out = append(out, fmt.Sprintf("and %d more", len(order)-maxProblems))
			break
		}
		who := "pod " + names[text][0]
		if n := len(names[text]); n > 1 {
			who = fmt.Sprintf("pods %s and %d more", names[text][0], n-1)
		}
		out = append(out, who+": "+text)
	}
	return out, first
}

// podProblem says what keeps one pod from being ready, or "" when nothing does.
func podProblem(p corev1.Pod, lim limits) (string, *fatal) {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			return "cannot be scheduled: " + unschedulable(p, c.Message), nil
		}
	}
	statuses := slices.Concat(p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
	several := len(statuses) > 1
	for _, cs := range statuses {
		if text, f := containerProblem(cs, several, lim); text != "" {
			return text, f
		}
	}
	switch {
	case p.Status.Phase == corev1.PodSucceeded:
		return "", nil
	case p.Status.Phase == corev1.PodFailed:
		return "failed" + strings.TrimPrefix(lastExit([]corev1.Pod{p}), "; pod "+p.Name+":"), nil
	case p.Status.Phase == corev1.PodPending && len(statuses) == 0:
		return "waiting to start", nil
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return "", nil
		}
	}
	return "not ready", nil
}

// containerProblem describes one container that is not ready, in the kubelet's words and ours.
func containerProblem(cs corev1.ContainerStatus, several bool, lim limits) (string, *fatal) {
	who := ""
	if several {
		who = "container " + cs.Name + ": "
	}
	last := cs.LastTerminationState.Terminated
	if w := cs.State.Waiting; w != nil {
		switch w.Reason {
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull":
			text := fmt.Sprintf("%simage %s cannot be pulled (%s)", who, clean(cs.Image, maxQuote), w.Reason)
			if w.Reason == "ErrImagePull" {
				return text, nil // the kubelet tries again before it backs off
			}
			return text, &fatal{code: proto.CodeImagePullFailed, text: text + quote(w.Message) +
				". Check the image's name and tag, and that its registry lets the cluster pull it"}
		case "CrashLoopBackOff":
			text := fmt.Sprintf("%sCrashLoopBackOff (%s, %s)", who, exitCode(last), restarts(cs.RestartCount))
			if cs.RestartCount >= lim.crashLoopRestarts {
				return text, &fatal{code: proto.CodeCrashLoop, text: fmt.Sprintf("%scontainer %s keeps crashing: %s%s",
					"", cs.Name, strings.TrimPrefix(text, who), lastMessage(last))}
			}
			return text, nil
		case "ContainerCreating", "PodInitializing":
			return who + "starting (" + w.Reason + ")", nil
		case "":
			return who + "waiting to start", nil
		}
		return fmt.Sprintf("%scannot start (%s)%s", who, w.Reason, quote(w.Message)), nil
	}
	if t := cs.State.Terminated; t != nil {
		if t.ExitCode == 0 {
			return "", nil
		}
		return who + exitText(t), nil
	}
	if cs.Ready {
		return "", nil
	}
	if cs.RestartCount >= lim.crashLoopRestarts && last != nil && last.ExitCode != 0 {
		text := fmt.Sprintf("%srestarted, %s (%s)", who, restarts(cs.RestartCount), exitCode(last))
		return text, &fatal{code: proto.CodeCrashLoop, text: fmt.Sprintf("container %s keeps crashing: %s%s",
			cs.Name, strings.TrimPrefix(text, who), lastMessage(last))}
	}
	if cs.State.Running != nil {
		return who + "running, not ready (its readiness probe does not pass)", nil
	}
	return "", nil
}

// restarts is "1 restart", "3 restarts".
func restarts(n int32) string {
	if n == 1 {
		return "1 restart"
	}
	return fmt.Sprintf("%d restarts", n)
}

// exitText is how a container ended: "exited with code 1: <message>", "ran out of memory (OOMKilled)".
func exitText(t *corev1.ContainerStateTerminated) string {
	if t.Reason == "OOMKilled" {
		return "ran out of memory (OOMKilled)" + lastMessage(t)
	}
	return fmt.Sprintf("exited with code %d", t.ExitCode) + lastMessage(t)
}

func exitCode(t *corev1.ContainerStateTerminated) string {
	if t == nil {
		return "exit code unknown"
	}
	if t.Reason == "OOMKilled" {
		return "OOMKilled"
	}
	return fmt.Sprintf("exit code %d", t.ExitCode)
}

// lastMessage quotes a container's termination message: its last words (or, with
// terminationMessagePolicy FallbackToLogsOnError, the last lines of its log).
func lastMessage(t *corev1.ContainerStateTerminated) string {
	if t == nil {
		return ""
	}
	if msg := clean(t.Message, maxQuote); msg != "" {
		return "; its last message: " + msg
	}
	return ""
}

func quote(msg string) string {
	if msg = clean(msg, maxQuote); msg != "" {
		return ": " + msg
	}
	return ""
}

var (
	insufficientRE = regexp.MustCompile(`Insufficient ([\w./-]+)`)
	// ansiRE matches terminal escape sequences: CSI (colours, cursor moves) and OSC (titles, links).
	ansiRE = regexp.MustCompile(`\x1b\[[0-9:;<=>?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?`)
)

// unschedulable turns the scheduler's message into words: "no node has 64 CPUs free (0/2 nodes
// are available: 2 Insufficient cpu)".
func unschedulable(p corev1.Pod, msg string) string {
	msg, _, _ = strings.Cut(msg, " preemption:")
	msg = strings.TrimSuffix(strings.TrimSpace(msg), ".")
	var why []string
	for _, m := range insufficientRE.FindAllStringSubmatch(msg, -1) {
		why = append(why, "no node has "+requested(p, corev1.ResourceName(m[1]))+" free")
	}
	switch {
	case strings.Contains(msg, "didn't match Pod's node affinity/selector"):
		why = append(why, "no node matches its nodeSelector or affinity")
	case strings.Contains(msg, "untolerated taint"):
		why = append(why, "every node has a taint it does not tolerate")
	}
	if len(why) == 0 {
		return clean(msg, maxQuote)
	}
	return strings.Join(slices.Compact(why), ", ") + " (" + clean(msg, maxQuote) + ")"
}

// requested is what a pod asks of a resource, in words: "64 CPUs", "128Gi of memory".
func requested(p corev1.Pod, name corev1.ResourceName) string {
	var sum resource.Quantity
	for _, c := range p.Spec.Containers {
		if q, ok := c.Resources.Requests[name]; ok {
			sum.Add(q)
		}
	}
	switch {
	case name == corev1.ResourceCPU && sum.MilliValue()%1000 == 0 && sum.Value() == 1:
		return "1 CPU"
	case name == corev1.ResourceCPU && sum.MilliValue()%1000 == 0:
		return fmt.Sprintf("%d CPUs", sum.Value())
	case name == corev1.ResourceCPU:
		return sum.String() + " CPU"
	case name == corev1.ResourceMemory:
		return sum.String() + " of memory"
	}
	return "enough " + string(name)
}

// clean makes text from the cluster safe to show and store: valid UTF-8, no terminal escape
// sequences, control or formatting characters (bidirectional overrides), lines joined with " | ",
// runs of spaces collapsed, and at most max bytes, keeping the end, where the last words are.
func clean(s string, max int) string {
	s = ansiRE.ReplaceAllString(strings.ToValidUTF8(s, "�"), "")
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		line = strings.Map(func(r rune) rune {
			switch {
			case r == '\t':
				return ' '
			case unicode.IsControl(r), unicode.Is(unicode.Cf, r):
				return -1
			}
			return r
		}, line)
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			lines = append(lines, line)
		}
	}
	s = strings.Join(lines, " | ")
	if len(s) <= max {
		return s
	}
	cut := len(s) - (max - len("…"))
	for cut < len(s) && !utf8.RuneStart(s[cut]) {
		cut++
	}
	return "…" + s[cut:]
}
