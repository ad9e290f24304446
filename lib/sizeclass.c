/* placeholder */ typedef int rc_placeholder_sizeclass;
