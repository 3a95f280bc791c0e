#!/bin/sh
# Rendered by hybridlab: QEMU with a 128 MiB TCG translation cache.
prev=
for arg do
	shift
	if [ "$prev" = -accel ] && [ "$arg" = tcg ]; then
		arg=tcg,tb-size=128
	fi
	set -- "$@" "$arg"
	prev=$arg
done
exec /usr/bin/qemu-system-x86_64 "$@"
