// eph-compose loads a Compose project with compose-go, the Compose specification's reference
// loader, and prints it normalised as JSON, for ephd's Docker provider and `eph validate`
// (pkg/providers/docker/compose_loader.h reads the output).
//
//	eph-compose --project-directory DIR --file FILE [--file FILE]... [--profile P]...
//	            [--var NAME=VALUE]... [--name NAME]
//
// Interpolation, merge keys, `extends`, `env_file`, `.env` of DIR and several documents in one
// file are all compose-go's. Variables come only from --var and DIR/.env: the process
// environment (ephd's) is never read, so nothing of the host reaches a preview. Every file the
// project reads (compose files, .env, env_file, extends.file, label_file) must lie inside DIR,
// symbolic links resolved, and is checked before it is read.
//
// Exit 0: the project on stdout. Exit 1: {"error": {"message", "path"?, "line"?, "column"?}} on
// stdout, with `path` the YAML path (services.web.ports) and `line` and `column` (1-based) when
// compose-go names them.
// Exit 2: bad arguments.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/sirupsen/logrus"
)

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error { *l = append(*l, v); return nil }

type request struct {
	dir      string // absolute, symbolic links resolved
	files    []string
	profiles []string
	vars     map[string]string
	name     string
}

func main() {
	// compose-go warns through logrus (obsolete `version`): stderr, never mixed into the JSON.
	logrus.SetOutput(os.Stderr)
	req, err := parseArgs(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "eph-compose:", err)
		os.Exit(2)
	}
	project, err := load(context.Background(), req)
	if err != nil {
		writeError(os.Stdout, req.dir, err)
		os.Exit(1)
	}
	out, err := project.MarshalJSON()
	if err != nil {
		writeError(os.Stdout, req.dir, err)
		os.Exit(1)
	}
	os.Stdout.Write(append(out, '\n'))
}

func parseArgs(args []string) (request, error) {
	fs := flag.NewFlagSet("eph-compose", flag.ContinueOnError)
	dir := fs.String("project-directory", "", "the repository checkout (required)")
	name := fs.String("name", "eph", "the project name")
	var files, profiles, vars listFlag
	fs.Var(&files, "file", "a compose file, relative to the project directory (repeatable)")
	fs.Var(&profiles, "profile", "a profile to enable (repeatable)")
	fs.Var(&vars, "var", "NAME=VALUE for interpolation (repeatable)")
	if err := fs.Parse(args); err != nil {
		return request{}, err
	}
	if *dir == "" || len(files) == 0 || fs.NArg() != 0 {
		return request{}, errors.New("usage: --project-directory DIR --file FILE [--file FILE]... " +
			"[--profile P]... [--var NAME=VALUE]... [--name NAME]")
	}
	abs, err := filepath.Abs(*dir)
	if err == nil {
		abs, err = filepath.EvalSymlinks(abs)
	}
	if err != nil {
		return request{}, err
	}
	req := request{dir: abs, profiles: profiles, name: *name, vars: map[string]string{}}
	for _, f := range files {
		req.files = append(req.files, filepath.Join(abs, f))
	}
	for _, v := range vars {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return request{}, fmt.Errorf("--var %q is not NAME=VALUE", v)
		}
		req.vars[k] = val
	}
	return req, nil
}

func load(ctx context.Context, req request) (*types.Project, error) {
	for _, f := range req.files {
		if err := checkInside(req.dir, f, "compose file"); err != nil {
			return nil, err
		}
	}
	opts := []cli.ProjectOptionsFn{
		cli.WithName(req.name),
		cli.WithWorkingDirectory(req.dir),
		cli.WithEnv(envList(req.vars)),
		cli.WithProfiles(req.profiles),
		cli.WithResolvedPaths(true),
	}
	dotenv := filepath.Join(req.dir, ".env")
	if st, err := os.Lstat(dotenv); err == nil && !st.IsDir() {
		if err := checkInside(req.dir, dotenv, ".env"); err != nil {
			return nil, err
		}
		// Eph's variables win over .env, as the shell's do over .env in Compose.
		opts = append(opts, cli.WithEnvFiles(dotenv), cli.WithDotEnv, cli.WithEnv(envList(req.vars)))
	}
	options, err := cli.NewProjectOptions(req.files, opts...)
	if err != nil {
		return nil, err
	}
	if err := guardFiles(ctx, req, options.Environment, req.files, req.dir, 0); err != nil {
		return nil, err
	}
	return options.LoadProject(ctx)
}

func envList(vars map[string]string) []string {
	var out []string
	for k, v := range vars {
		out = append(out, k+"="+v)
	}
	return out
}

// guardFiles loads `files` without following anything they name, and checks every file they
// would make the full load read (env_file, label_file, extends.file: then recursively) against
// the project directory, so that a compose file cannot pour a host file into a preview.
func guardFiles(ctx context.Context, req request, env types.Mapping, files []string,
	workDir string, depth int) error {
	if depth > 16 {
		return errors.New("extends: files extend each other more than 16 levels deep")
	}
	var configs []types.ConfigFile
	for _, f := range files {
		if err := checkInside(req.dir, f, "compose file"); err != nil {
			return err
		}
		configs = append(configs, types.ConfigFile{Filename: f})
	}
	model, err := loader.LoadModelWithContext(ctx, types.ConfigDetails{
		WorkingDir: workDir, ConfigFiles: configs, Environment: env,
	}, func(o *loader.Options) {
		o.SkipExtends, o.SkipInclude, o.SkipResolveEnvironment = true, true, true
		o.SkipResolveLabels, o.SkipNormalization, o.SkipConsistencyCheck = true, true, true
		o.SkipValidation = true
		o.ResolvePaths = true
		o.Profiles = []string{"*"}
		o.SetProjectName(req.name, true)
	})
	if err != nil {
		return err
	}
	if _, ok := model["include"]; ok {
		return errors.New("include: Eph does not support `include` yet; " +
			"list the files in docker.compose_file of eph.yaml instead")
	}
	services, _ := model["services"].(map[string]any)
	for name, raw := range services {
		if err := guardService(ctx, req, env, name, raw, depth); err != nil {
			return err
		}
	}
	return nil
}

func guardService(ctx context.Context, req request, env types.Mapping, name string, raw any,
	depth int) error {
	svc, _ := raw.(map[string]any)
	where := "services." + name
	for _, e := range asList(svc["env_file"]) {
		path := e
		if m, ok := e.(map[string]any); ok {
			path = m["path"]
		}
		if err := checkInsideAny(req.dir, path, where+".env_file"); err != nil {
			return err
		}
	}
	for _, l := range asList(svc["label_file"]) {
		if err := checkInsideAny(req.dir, l, where+".label_file"); err != nil {
			return err
		}
	}
	ext, ok := svc["extends"].(map[string]any)
	if !ok {
		return nil
	}
	file, ok := ext["file"].(string)
	if !ok {
		return nil
	}
	if err := checkInside(req.dir, file, where+".extends.file"); err != nil {
		return err
	}
	return guardFiles(ctx, req, env, []string{file}, filepath.Dir(file), depth+1)
}

func asList(v any) []any {
	switch t := v.(type) {
	case nil:
		return nil
	case []any:
		return t
	default:
		return []any{t}
	}
}

func checkInsideAny(dir string, path any, what string) error {
	s, ok := path.(string)
	if !ok {
		return nil // not a path: the full load reports the type error
	}
	return checkInside(dir, s, what)
}

// checkInside fails unless `path` (absolute), its symbolic links resolved, lies inside `dir`.
// A path that does not exist passes: compose-go then reports it missing (or skips an optional
// env_file), without reading anything.
func checkInside(dir, path, what string) error {
	real, err := filepath.EvalSymlinks(path)
	if errors.Is(err, os.ErrNotExist) {
		real, err = filepath.Clean(path), nil
		if resolved, e := filepath.EvalSymlinks(filepath.Dir(path)); e == nil {
			real = filepath.Join(resolved, filepath.Base(path))
		}
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	rel, err := filepath.Rel(dir, real)
	if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
		return fmt.Errorf("%s: %s is outside the repository: a preview reads files from "+
			"the repository checkout only", what, path)
	}
	return nil
}

// Where compose-go names the place: "services.web.ports" in schema and interpolation errors,
// "line 3" in YAML syntax errors.
var (
	pathRE = regexp.MustCompile(`\b((?:services|volumes|networks|secrets|configs|models|include)` +
		`(?:\.[A-Za-z0-9_.\-\[\]]+)?)`)
	lineRE = regexp.MustCompile(`\bline (\d+)(?:, column (\d+))?`)
)

type loadError struct {
	Message string `json:"message"`
	Path    string `json:"path,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
}

func writeError(w io.Writer, dir string, err error) {
	msg := err.Error()
	if dir != "" {
		// Messages name files relative to the repository, as the user sees them.
		msg = strings.ReplaceAll(msg, dir+string(filepath.Separator), "")
	}
	e := loadError{Message: msg}
	if m := pathRE.FindStringSubmatch(msg); m != nil {
		e.Path = strings.TrimRight(m[1], ".")
	}
	// yaml.v4 says where it started the enclosing block first and where it failed last.
	if all := lineRE.FindAllStringSubmatch(msg, -1); all != nil {
		m := all[len(all)-1]
		e.Line, _ = strconv.Atoi(m[1])
		e.Column, _ = strconv.Atoi(m[2])
	}
	_ = json.NewEncoder(w).Encode(map[string]loadError{"error": e})
}
