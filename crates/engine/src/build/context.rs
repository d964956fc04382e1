//! The build context: the uploaded tar extracted (safely) into a private directory.
