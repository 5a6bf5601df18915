/* Empty: this target only exports osprey_abi.h to Swift. */
