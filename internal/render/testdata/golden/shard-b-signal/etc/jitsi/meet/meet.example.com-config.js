// Managed by jitsi-agent: rendered from the deployment spec. Local edits are
// overwritten or reported as drift; change the spec instead.
// Jitsi Meet web configuration for meet.example.com. None of these keys is an access
// control: users can override them from the URL; enforcement is server-side.

var subdir = '';
var subdomain = '';

var config = {
    hosts: {
        domain: "meet.example.com",
        muc: 'conference.' + subdomain + "meet.example.com",
    },

    bosh: "https://meet.example.com/" + subdir + 'http-bind',
    websocket: "wss://meet.example.com/" + subdir + 'xmpp-websocket',
    websocketKeepAliveUrl: "https://meet.example.com/" + subdir + '_unlock',
    bridgeChannel: {
        preferSctp: false,
    },

    startWithAudioMuted: false,
    startWithVideoMuted: false,

    p2p: {
        enabled: true,
        // own STUN server instead of the jitsi.net default
        stunServers: [
            { urls: "stun:signal-b.internal.example.com:3478" },
        ],
    },

    disableChat: false,
    disablePolls: false,
    disableReactions: false,
    breakoutRooms: {
        hideAddRoomButton: false,
        hideAutoAssignButton: false,
        hideJoinRoomButton: false,
    },
    securityUi: {
        hideLobbyButton: false,
    },
    prejoinConfig: {
        enabled: true,
    },
    requireDisplayName: false,

    recordingService: {
        enabled: false,
        sharingEnabled: false,
    },
    liveStreaming: {
        enabled: false,
    },
};
