# Build and install OnAir as a systemd service. PREFIX and DESTDIR are honoured:
#   make install                       # into /usr/local, the unit into /usr/local/lib/systemd/system
#   make install DESTDIR=/tmp/root     # staged, for packaging
PREFIX      ?= /usr/local
DESTDIR     ?=
BINDIR      ?= $(PREFIX)/bin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
SYSCONFDIR  ?= /etc
DOCDIR      ?= $(PREFIX)/share/doc/onair
SWIFT       ?= swift

.PHONY: all build install uninstall

all: build

# The Swift runtime and Foundation are linked in: the installed binary needs no Swift toolchain
# on the server (only libcurl, libsqlite3 and libyaml from Debian), and it also starts smaller.
build:
	$(SWIFT) build -c release --static-swift-stdlib --product onair

install: build
	install -D -m 0755 .build/release/onair $(DESTDIR)$(BINDIR)/onair
	install -d -m 0755 $(DESTDIR)$(UNITDIR)
	sed 's|/usr/local/bin/onair|$(BINDIR)/onair|g; s|/etc/onair|$(SYSCONFDIR)/onair|g' systemd/onair.service \
		> $(DESTDIR)$(UNITDIR)/onair.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/onair.service
	install -D -m 0644 systemd/onair.sysusers $(DESTDIR)$(SYSUSERSDIR)/onair.conf
	install -d -m 0755 $(DESTDIR)$(SYSCONFDIR)/onair
	install -d -m 0700 $(DESTDIR)$(SYSCONFDIR)/onair/credentials
	# The example schedule is installed only when there is none: an operator's file is never overwritten.
	test -e $(DESTDIR)$(SYSCONFDIR)/onair/schedule.yaml || \
		install -m 0644 config/onair-example.yaml $(DESTDIR)$(SYSCONFDIR)/onair/schedule.yaml
	install -D -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -D -m 0644 docs/control-api.md $(DESTDIR)$(DOCDIR)/control-api.md
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null; then systemd-sysusers $(SYSUSERSDIR)/onair.conf; fi
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# Removes what install put in place; the schedule, the credentials and the journal in
# /var/lib/onair are the operator's and stay.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/onair $(DESTDIR)$(UNITDIR)/onair.service $(DESTDIR)$(SYSUSERSDIR)/onair.conf
	rm -rf $(DESTDIR)$(DOCDIR)
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi
