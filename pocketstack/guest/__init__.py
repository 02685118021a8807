"""The pocketstack guest: a small bootable Linux root file system image."""
