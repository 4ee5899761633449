#!/bin/sh
# A shell "Raspberry Pi" for the piman demo and the PiNode tests: it
# netboots like the Pi bootloader (PXE-style DHCP with option 43, the boot
# files over TFTP), then runs the installer's side of the handshake: ask
# the plan, fetch and check the image, report progress. Run it in the
# Pi's network namespace with DIR (its "disk"), SCRIPTS (where
# udhcpc.script is), SERVER (the daemon's address) and MAC set.
set -e
ip addr flush dev eth0
echo "T start $(date +%s%N)"
busybox udhcpc -f -q -n -i eth0 -t 5 -T 1 -s "$SCRIPTS/udhcpc.script" \
  -V "PXEClient:Arch:00000:UNDI:002001" -x 0x5d:0000 -O 43 -O 66 -O 67
echo "T leased $(date +%s%N)"
curl -sSf "tftp://$SERVER/start4.elf" -o "$DIR/start4.elf"
echo "T booted $(date +%s%N)"
plan=$(curl -sSf "http://$SERVER:8070/netboot/v1/nodes/$MAC/plan")
echo "PLAN $plan"
case "$plan" in
*'"install"'*)
  url=$(echo "$plan" | python3 -c 'import json,sys; print(json.load(sys.stdin)["image"]["url"])')
  sha=$(echo "$plan" | python3 -c 'import json,sys; print(json.load(sys.stdin)["image"]["sha256"])')
  curl -sSf -X POST -d '{"phase":"installing","percent":10,"message":"downloading"}' "http://$SERVER:8070/netboot/v1/nodes/$MAC/progress"
  t0=$(date +%s%N)
  curl -sSf "$url" -o "$DIR/disk.img"
  echo "COPYMS $(( ($(date +%s%N) - t0) / 1000000 ))"
  echo "$sha  $DIR/disk.img" | sha256sum -c -
  echo "T checked $(date +%s%N)"
  curl -sSf -X POST -d '{"phase":"installed","percent":100}' "http://$SERVER:8070/netboot/v1/nodes/$MAC/progress"
  echo INSTALLED ;;
*) echo BOOTLOCAL ;;
esac
