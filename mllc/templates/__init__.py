"""Files that mllc writes into users' repositories (mllc init)."""
