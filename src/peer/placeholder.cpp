// placeholder until the Peer lands
namespace jamnet { int peer_layer_placeholder = 0; }
