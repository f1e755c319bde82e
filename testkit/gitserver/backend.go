package gitserver

import (
	"fmt"
	"net/http"
	"net/http/cgi"
	"os"
	"os/exec"
)

// Backend returns `git http-backend` as an http.Handler serving the bare repositories under root
// (read-only: upload-pack only). home is the HOME the git processes get. It is what New serves, and
// what `make run` uses to serve the example repository.
func Backend(root, home string) (http.Handler, error) {
	gitPath, err := exec.LookPath("git")
	if err != nil {
		return nil, fmt.Errorf("the git binary is needed to serve repositories (apt-get install git): %w", err)
	}
	return &cgi.Handler{
		Path: gitPath,
		Args: []string{"http-backend"},
		Dir:  root,
		Env: []string{
			"GIT_PROJECT_ROOT=" + root,
			"GIT_HTTP_EXPORT_ALL=1",
			"HOME=" + home,
			"GIT_CONFIG_NOSYSTEM=1",
			"GIT_CONFIG_COUNT=2",
			"GIT_CONFIG_KEY_0=http.uploadpack",
			"GIT_CONFIG_VALUE_0=true",
			"GIT_CONFIG_KEY_1=uploadpack.allowReachableSHA1InWant",
			"GIT_CONFIG_VALUE_1=true",
		},
		InheritEnv: []string{"PATH"},
		Stderr:     os.Stderr,
	}, nil
}
