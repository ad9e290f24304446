/* placeholder */ typedef int rc_placeholder_options;
