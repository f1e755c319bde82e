package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"text/tabwriter"

	"github.com/backendim/brain/worker/internal/cluster"
	"github.com/backendim/brain/worker/internal/config"
	"github.com/backendim/brain/worker/internal/deployer"
)

// doctor prints who the worker is on its cluster and whether it holds every permission it needs;
// it fails when the cluster cannot be reached or a permission is missing.
func doctor(ctx context.Context, args []string, getenv func(string) string, out io.Writer) error {
	cfg, err := config.Load(args, getenv, out)
	if err != nil {
		return err
	}
	if cfg.Cluster.Mode == cluster.ModeNone {
		return errors.New("doctor: KUBE_AUTH=none: this worker uses no cluster; set KUBE_AUTH to check one")
	}
	log := slog.New(slog.DiscardHandler)
	dep, err := newDeployer(ctx, cfg, log)
	if err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, setupTimeout)
	defer cancel()
	rep, err := dep.Doctor(ctx)
	if err != nil {
		return fmt.Errorf("doctor: %w", err)
	}
	printReport(out, cfg, rep)
	if missing := rep.Missing(); len(missing) > 0 {
		return fmt.Errorf("doctor: %d permissions missing; apply deploy/kubernetes/base/worker-rbac.yaml or bind the worker's identity to an equivalent role", len(missing))
	}
	return nil
}

func printReport(out io.Writer, cfg config.Config, rep deployer.Report) {
	fmt.Fprintf(out, "cluster:  %s (KUBE_AUTH=%s)\nversion:  %s\nidentity: %s\ngroups:   %s\n\n",
		rep.Server, cfg.Cluster.Mode, rep.Version, rep.User, strings.Join(rep.Groups, ", "))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "RESOURCE\tVERB\tALLOWED\tREASON")
	for _, c := range rep.Checks {
		res := c.Resource
		if c.Group != "" {
			res += "." + c.Group
		}
		ok := "yes"
		if !c.Allowed {
			ok = "NO"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", res, c.Verb, ok, c.Reason)
	}
	_ = tw.Flush()
	fmt.Fprintf(out, "\n%d of %d checks passed\n", len(rep.Checks)-len(rep.Missing()), len(rep.Checks))
}
