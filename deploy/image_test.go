package deploy

import (
	"bufio"
	"context"
	"debug/elf"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the repository root, seen from this package's directory.
const repoRoot = ".."

// dockerfileRuns returns the RUN commands of the Dockerfile's stages, with
// continuation lines joined.
func dockerfileRuns(t *testing.T) (runs []string, froms []string, users []string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if cur.Len() == 0 && (l == "" || strings.HasPrefix(l, "#")) {
			continue
		}
		if rest, ok := strings.CutSuffix(l, `\`); ok {
			cur.WriteString(strings.TrimSpace(rest) + " ")
			continue
		}
		cur.WriteString(l)
		lines = append(lines, cur.String())
		cur.Reset()
	}
	for _, l := range lines {
		instr, arg, _ := strings.Cut(l, " ")
		switch strings.ToUpper(instr) {
		case "RUN":
			runs = append(runs, strings.TrimSpace(arg))
		case "FROM":
			froms = append(froms, strings.TrimSpace(arg))
		case "USER":
			users = append(users, strings.TrimSpace(arg))
		}
	}
	return runs, froms, users
}

// buildCommand returns the Dockerfile's `go build` command, and checks that
// docs/operations.md documents the same command.
func buildCommand(t *testing.T) string {
	t.Helper()
	runs, _, _ := dockerfileRuns(t)
	var build []string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = append(build, r)
		}
	}
	if len(build) != 1 {
		t.Fatalf("Dockerfile: %d RUN lines with go build (%q); want exactly one", len(build), build)
	}
	doc, err := os.ReadFile(filepath.Join(repoRoot, "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "\n"+build[0]+"\n") {
		t.Errorf("docs/operations.md does not show the Dockerfile's build command on a line of its own:\n%s", build[0])
	}
	return build[0]
}

// TestDockerfileBase checks the final stage: a minimal base without a
// shell, and a numeric non-root user so that the kubelet can enforce
// runAsNonRoot.
func TestDockerfileBase(t *testing.T) {
	_, froms, users := dockerfileRuns(t)
	if len(froms) < 2 {
		t.Fatalf("Dockerfile has %d stages; want a build stage and a runtime stage", len(froms))
	}
	final := froms[len(froms)-1]
	if !strings.HasPrefix(final, "gcr.io/distroless/static") && final != "scratch" {
		t.Errorf("final stage FROM %s; want distroless static or scratch", final)
	}
	if len(users) == 0 {
		t.Fatal("Dockerfile sets no USER")
	}
	user := users[len(users)-1]
	uid, _, _ := strings.Cut(user, ":")
	if uid == "" || uid == "0" || strings.Trim(uid, "0123456789") != "" {
		t.Errorf("USER %s; want a numeric non-zero uid", user)
	}
}

// TestImageBuildIsStatic runs the Dockerfile's build command, as written,
// in a copy of the build context that .dockerignore leaves, and checks that
// every binary it builds is statically linked: no program interpreter, no
// dynamic section, no shared library needed. The distroless static base has
// no C library, so a dynamic binary would not start there.
func TestImageBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	cmd := buildCommand(t)
	if !strings.Contains(cmd, "-trimpath") || !strings.HasPrefix(cmd, "CGO_ENABLED=0 ") {
		t.Errorf("build command %q: want CGO_ENABLED=0 and -trimpath", cmd)
	}
	ctxDir := buildContext(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := exec.CommandContext(ctx, "sh", "-c", cmd)
	c.Dir = ctxDir
	// The command sets CGO_ENABLED itself; clear it so that the test cannot
	// pass on a value inherited from the environment.
	c.Env = append(withoutEnv(os.Environ(), "CGO_ENABLED"), "GOFLAGS=-buildvcs=false")
	if out, err := c.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	for _, name := range []string{"breakwater", "breakwaterctl"} {
		checkStatic(t, filepath.Join(ctxDir, "bin", name))
	}
}

// TestStaticCheckCatchesDynamic builds a binary that links the C library
// through cgo and checks that checkStatic would refuse it, so that the
// static check above cannot pass on any binary. It needs a C compiler and
// is skipped without one.
func TestStaticCheckCatchesDynamic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a binary")
	}
	if _, err := exec.LookPath("gcc"); err != nil {
		t.Skip("no C compiler: cgo cannot build a dynamic binary here")
	}
	dir := t.TempDir()
	src := "package main\n\n// #include <stdlib.h>\nimport \"C\"\n\nfunc main() { C.free(nil) }\n"
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module dyn\n\ngo 1.26\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := exec.Command("go", "build", "-o", "dyn", ".")
	c.Dir = dir
	c.Env = append(withoutEnv(os.Environ(), "CGO_ENABLED"), "CGO_ENABLED=1")
	if out, err := c.CombinedOutput(); err != nil {
		t.Skipf("cgo build failed, cannot check the check: %v\n%s", err, out)
	}
	if problems := staticProblems(filepath.Join(dir, "dyn")); len(problems) == 0 {
		t.Error("staticProblems found nothing wrong with a cgo binary linked against libc")
	}
}

// checkStatic fails the test if the ELF file at path is not static.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	for _, p := range staticProblems(path) {
		t.Errorf("%s: %s", filepath.Base(path), p)
	}
}

// staticProblems lists why the ELF file at path is not a static
// executable; none means it is.
func staticProblems(path string) []string {
	f, err := elf.Open(path)
	if err != nil {
		return []string{err.Error()}
	}
	defer f.Close()
	var problems []string
	for _, p := range f.Progs {
		switch p.Type {
		case elf.PT_INTERP:
			problems = append(problems, "has a program interpreter (PT_INTERP): dynamically linked")
		case elf.PT_DYNAMIC:
			problems = append(problems, "has a dynamic segment (PT_DYNAMIC)")
		}
	}
	if s := f.Section(".dynamic"); s != nil {
		problems = append(problems, "has a .dynamic section")
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		problems = append(problems, "reading DT_NEEDED: "+err.Error())
	}
	for _, l := range libs {
		problems = append(problems, "needs the shared library "+l+" (DT_NEEDED)")
	}
	return problems
}

// buildContext copies the repository into a temporary directory, leaving
// out what .dockerignore excludes, as docker build would send it.
func buildContext(t *testing.T) string {
	t.Helper()
	patterns := dockerignore(t)
	root, err := filepath.Abs(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(patterns, rel) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		target := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(target, 0o755)
		case d.Type().IsRegular():
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, data, 0o644)
		default:
			// Symbolic links and other special files are not part of the sources.
			return nil
		}
	})
	if err != nil {
		t.Fatalf("copy the build context: %v", err)
	}
	return dst
}

// dockerignore reads the patterns of .dockerignore. The test knows plain
// patterns only (as Go's filepath.Match, against the path relative to the
// root, where a matching directory excludes all below it); an exception
// (!) or ** fails the test, so that the copy never differs silently from
// what docker sends.
func dockerignore(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatal(".dockerignore is missing: the build context would include .git and built binaries")
	}
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for l := range strings.Lines(string(data)) {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasPrefix(l, "!") || strings.Contains(l, "**") {
			t.Fatalf(".dockerignore pattern %q: this test only knows plain patterns; teach buildContext the rest", l)
		}
		p := strings.Trim(filepath.ToSlash(filepath.Clean(l)), "/")
		if _, err := filepath.Match(p, ""); err != nil {
			t.Fatalf(".dockerignore pattern %q: %v", l, err)
		}
		patterns = append(patterns, p)
	}
	return patterns
}

// ignored reports whether rel (slash separated, relative to the root) is
// excluded by one of patterns.
func ignored(patterns []string, rel string) bool {
	for _, p := range patterns {
		if ok, _ := filepath.Match(p, rel); ok {
			return true
		}
	}
	return false
}

// withoutEnv returns env without the variables named name.
func withoutEnv(env []string, name string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}
