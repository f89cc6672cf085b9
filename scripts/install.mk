# `make install` / `make uninstall`, included by the top Makefile. Honours DESTDIR
# (staging root) and PREFIX (default /usr/local); every directory can be overridden.
#
#   $(BINDIR)/dynoprof                       the binary
#   $(LIBDIR)/libdynotag.so.1 (+ .so)        libdynotag, $(INCLUDEDIR)/dynotag.h
#   $(PYTHON_SITEDIR)/dynotag/               the Python package, where $(PYTHON) looks
#                                            for this prefix (Debian: dist-packages)
#   $(UNITDIR)/dynoprof-agent.service        ExecStart pointing at $(BINDIR)
#   $(SYSCONFDIR)/dynoprof/agent.conf        only when there is none (never overwritten)
#   $(MANDIR)/man1/dynoprof.1
#
# The unit, the man page and the Python package carry the installed paths
# without DESTDIR: a staged tree works once copied to /.

BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
MANDIR      ?= $(PREFIX)/share/man
SYSCONFDIR  ?= /etc
# systemd reads units from /usr/local/lib/systemd/system and /usr/lib/systemd/system.
UNITDIR     ?= $(PREFIX)/lib/systemd/system
# Debian's python3 reads /usr/lib/python3/dist-packages for /usr and
# $(PREFIX)/lib/python3.X/dist-packages for /usr/local (site.py).
PYTHON_VERSION := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
PYTHON_SITEDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(PREFIX)/lib/python$(PYTHON_VERSION)/dist-packages)

DYNOTAG_PY := $(wildcard libdynotag/python/dynotag/*.py)

.PHONY: install uninstall install-python install-agent

install: dynoprof libdynotag install-libdynotag install-python install-agent
	install -D -m 0755 dynoprof $(DESTDIR)$(BINDIR)/dynoprof
	install -D -m 0644 scripts/dynoprof.1 $(DESTDIR)$(MANDIR)/man1/dynoprof.1
	@# ld.so cache for C programs linking -ldynotag (a real install into a system prefix).
	@if [ -z "$(DESTDIR)" ] && [ "$(LIBDIR)" = /usr/local/lib -o "$(LIBDIR)" = /usr/lib ] && \
	    command -v ldconfig >/dev/null; then ldconfig; fi

# The package, and dynotag/_install.py naming the installed libdynotag's directory
# (dynotag/__init__.py tries it when no library sits next to the package).
install-python:
	install -d $(DESTDIR)$(PYTHON_SITEDIR)/dynotag
	install -m 0644 $(DYNOTAG_PY) $(DESTDIR)$(PYTHON_SITEDIR)/dynotag/
	printf '# Written by make install: where libdynotag was installed.\nLIBDIR = %s\n' \
		"'$(LIBDIR)'" > $(DESTDIR)$(PYTHON_SITEDIR)/dynotag/_install.py
	chmod 0644 $(DESTDIR)$(PYTHON_SITEDIR)/dynotag/_install.py

install-agent:
	install -d $(DESTDIR)$(UNITDIR)
	sed -e 's|/usr/local/bin/dynoprof|$(BINDIR)/dynoprof|g' \
	    -e 's|/etc/dynoprof/|$(SYSCONFDIR)/dynoprof/|g' \
		scripts/dynoprof-agent.service > $(DESTDIR)$(UNITDIR)/dynoprof-agent.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/dynoprof-agent.service
	@if [ -e $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf ]; then \
		echo "install: kept the existing $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf (new defaults: scripts/agent.conf)"; \
	else \
		echo "install -D -m 0644 scripts/agent.conf $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf"; \
		install -D -m 0644 scripts/agent.conf $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf; \
	fi

# Removes what install wrote; agent.conf only while it is the shipped one (an edited
# config stays), the history database never.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/dynoprof $(DESTDIR)$(MANDIR)/man1/dynoprof.1 \
	      $(DESTDIR)$(LIBDIR)/libdynotag.so.1 $(DESTDIR)$(LIBDIR)/libdynotag.so \
	      $(DESTDIR)$(INCLUDEDIR)/dynotag.h $(DESTDIR)$(UNITDIR)/dynoprof-agent.service
	rm -rf $(DESTDIR)$(PYTHON_SITEDIR)/dynotag
	@if cmp -s scripts/agent.conf $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf; \
		rmdir $(DESTDIR)$(SYSCONFDIR)/dynoprof 2>/dev/null || true; \
	elif [ -e $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf ]; then \
		echo "uninstall: kept $(DESTDIR)$(SYSCONFDIR)/dynoprof/agent.conf (edited)"; \
	fi
