/* driver.h - the Python code py_embed.c and py_dlopen.c run once the interpreter
 * is up and sys.argv is [SCRIPT, ARGS...]: SCRIPT executed as __main__ under its
 * own file name, so its frames carry SCRIPT and its lines (the driver's own frame
 * is <string>:<module>, what tests/integration/test_python_embedded.py expects
 * at the root of every stack). */
#ifndef EMBED_DRIVER_H
#define EMBED_DRIVER_H

static const char driver[] =
	"import sys\n"
	"path = sys.argv[0]\n"
	"with open(path) as f:\n"
	"    source = f.read()\n"
	"code = compile(source, path, 'exec')\n"
	"exec(code, {'__name__': '__main__', '__file__': path, '__builtins__': __builtins__})\n";

#endif
