// i18n.js owns the page's words in pt-BR and English, the language choice, and formatting of times.

const LANG_KEY = 'papo.lang';

// Exported for the browser test, which checks both languages have every key with the same placeholders.
export const STRINGS = {
  'pt-BR': {
    skipToComposer: 'Pular para a mensagem',
    loginTitle: 'Bate-papo em tempo real',
    loginLead: 'Escolha um nome para entrar. Sem cadastro, sem senha.',
    yourName: 'Seu nome',
    connect: 'Conectar',
    connecting: 'Conectando…',
    language: 'Idioma',
    conversations: 'Conversas',
    closeMenu: 'Fechar menu',
    openMenu: 'Abrir menu',
    browseRooms: 'Explorar salas',
    yourRooms: 'Suas salas',
    noRoomsJoined: 'Você ainda não entrou em nenhuma sala.',
    directMessages: 'Mensagens diretas',
    newDm: 'Nova mensagem direta',
    dmTo: 'Para',
    dmPlaceholder: 'Nome da pessoa',
    open: 'Abrir',
    logout: 'Desconectar',
    logoutTitle: 'Desconectar?',
    logoutText: 'Você sai de todas as salas, e as mensagens diretas somem desta página.',
    members: 'Participantes',
    leave: 'Sair da sala',
    closeConversation: 'Fechar',
    close: 'Fechar',
    roomsHeading: 'Salas',
    refresh: 'Atualizar',
    filterRooms: 'Filtrar salas',
    noRooms: 'Nenhuma sala ainda. Crie a primeira!',
    noRoomsMatch: 'Nenhuma sala com esse nome.',
    roomsShown: 'Mostrando {shown} de {total} salas, em ordem alfabética.',
    roomsSearching: 'Procurando “{q}” em todas as salas…',
    roomsFound: '{n} sala com “{q}”.|{n} salas com “{q}”.',
    roomsFoundSome: 'Mostrando {shown} de {total} salas com “{q}”.',
    moreRooms: 'Mais salas',
    loadingRooms: 'Carregando salas…',
    roomRemoved: 'A sala {room} foi removida do servidor.',
    roomRemovedOpen: 'A sala {room} foi removida do servidor, com as mensagens dela. Você voltou para a lista de salas.',
    createRoom: 'Criar sala',
    roomName: 'Nome da sala',
    passwordOptional: 'Senha (opcional)',
    passwordHint: 'Com senha, só entra quem souber a senha.',
    createAndJoin: 'Criar e entrar',
    messages: 'Mensagens',
    loadOlder: 'Carregar mensagens anteriores',
    historyStart: 'Início da conversa em {room}.',
    dmStartGuest: 'Mensagens diretas com {name}. Não ficam guardadas: somem quando você sai ou recarrega a página.',
    dmStartAccount: 'Mensagens diretas com {name}. O histórico fica guardado para contas.',
    newMessages: 'Novas mensagens',
    jumpLatest: 'Ir para as mais recentes',
    emoji: 'Emoji',
    message: 'Mensagem',
    messageTo: 'Mensagem para {name}',
    // Attachments (upload.js, attachments.js)
    attach: 'Anexar arquivos',
    attachGuest: 'Só quem entra com uma conta pode enviar arquivos.',
    dropHere: 'Solte os arquivos para anexar',
    tooManyFiles: 'No máximo {n} arquivos por mensagem.',
    uploadingFile: 'Enviando {name}',
    uploadProgress: '{pct}% de {size}',
    uploadDone: '{name} pronto para enviar.',
    uploadCancel: 'Cancelar o envio de {name}',
    uploadRemove: 'Tirar {name} da mensagem',
    uploadRetry: 'Tentar enviar {name} de novo',
    uploadWaiting: 'A mensagem vai assim que os arquivos terminarem de subir.',
    uploadFixFirst: 'Um arquivo não subiu: tente de novo ou tire-o da mensagem antes de enviar.',
    uploadTooLarge: 'Grande demais para este servidor.',
    uploadTooLargeLimit: 'Grande demais: o limite é {limit}.',
    uploadQuota: 'Você atingiu sua cota diária de arquivos.',
    uploadQuotaWait: 'Você atingiu sua cota diária de arquivos. Tente de novo em {when}.',
    uploadRate: 'Arquivos demais em pouco tempo. Espere um pouco.',
    uploadRateWait: 'Arquivos demais em pouco tempo. Tente de novo em {when}.',
    inSeconds: '{n} s',
    inMinutes: '{n} min',
    inHours: '{n} h',
    uploadNetwork: 'A conexão falhou no meio do envio. Tente de novo.',
    openPicture: 'Ver {name} em tamanho real',
    openOriginal: 'Abrir o original em outra aba',
    closePicture: 'Fechar imagem',
    downloadFile: 'Baixar {name}, {size}',
    err_no_such_file: 'Um dos arquivos não está mais no servidor. Anexe de novo.',
    send: 'Enviar',
    composerHelp: 'Enter envia, Shift+Enter quebra a linha.',
    composerHelpTouch: 'Enter quebra a linha; o botão Enviar envia.',
    password: 'Senha',
    passwordPrompt: 'Esta sala é protegida. Digite a senha para entrar.',
    passwordTitle: 'Entrar em {room}',
    cancel: 'Cancelar',
    join: 'Entrar',
    joined: 'Participando',
    protectedRoom: 'Sala protegida por senha',
    memberCount: '{n} pessoa|{n} pessoas',
    online: 'Conectado',
    offline: 'Sem conexão',
    lobbyTitle: 'Explorar salas',
    lobbySub: 'Entre numa sala ou crie a sua',
    dmSub: 'Mensagem direta',
    dmOnline: 'Online',
    dmOffline: 'Offline',
    dmWarnOffline: '{name} não está online. Mensagens diretas só chegam a quem está online.',
    dmWarnUnknown: 'Vocês não estão numa mesma sala, então não dá para ver se {name} está online. Se não estiver, a mensagem não chega.',
    you: 'você',
    sendDm: 'Mensagem direta para {name}',
    moreMembers: 'e mais {n}',
    // System lines in a conversation
    sysJoined: '{name} entrou na sala',
    sysLeft: '{name} saiu da sala',
    sysYouJoined: 'Você entrou na sala',
    sysDisconnected: 'Conexão perdida',
    sysReconnected: 'Reconectado',
    // Connection banner
    connLost: 'Conexão perdida. Reconectando em {s} s…',
    connRetrying: 'Reconectando…',
    connBack: 'Reconectado.',
    connNameWait: 'Aguardando o servidor liberar seu nome…',
    connDown: 'Conexão perdida. Tentando reconectar…',
    retryNow: 'Tentar agora',
    roomGone: 'A sala {room} não existe mais (o servidor foi reiniciado). Ela foi removida da lista.',
    roomsGone: 'As salas {rooms} não existem mais (o servidor foi reiniciado). Elas foram removidas da lista.',
    roomLocked: 'Não foi possível voltar para {rooms}: a senha mudou. Entre de novo pela lista de salas.',
    // Typing
    typingOne: '{a} está digitando…',
    typingTwo: '{a} e {b} estão digitando…',
    typingMany: 'Várias pessoas estão digitando…',
    // Days
    today: 'Hoje',
    yesterday: 'Ontem',
    unread: '{n} não lida|{n} não lidas',
    newFrom: 'Nova mensagem de {name} em {conv}',
    // Errors by protocol code
    err_bad_request: 'O servidor não entendeu o pedido.',
    err_unknown_type: 'O servidor não conhece esse comando.',
    err_not_identified: 'Você ainda não está conectado.',
    err_already_identified: 'Você já está conectado.',
    err_invalid_name: 'Nome inválido: use de 1 a 32 caracteres.',
    err_name_taken: 'Esse nome já está em uso. Escolha outro.',
    err_invalid_room: 'Nome de sala inválido: use de 1 a 48 caracteres.',
    err_room_exists: 'Já existe uma sala com esse nome.',
    err_no_such_room: 'Essa sala não existe.',
    err_wrong_password: 'Senha incorreta.',
    err_not_in_room: 'Você não está nessa sala.',
    err_invalid_text: 'Mensagem vazia ou longa demais (máximo 4000 caracteres).',
    err_invalid_password: 'Senha longa demais (máximo 128 caracteres).',
    err_no_such_user: '{name} não está online.',
    err_rate_limited: 'Devagar! Você está enviando rápido demais. Tente de novo em instantes.',
    err_create_rate_limited: 'Você criou salas demais nos últimos tempos. Tente de novo mais tarde.',
    err_too_many_rooms: 'O servidor já tem o máximo de salas que aceita. Entre numa sala que já existe.',
    err_unavailable: 'O servidor não consegue salvar agora. Tente de novo daqui a pouco.',
    err_offline: 'Sem conexão com o servidor. O que você escreveu continua aqui: envie quando reconectar.',
    err_timeout: 'O servidor não respondeu. Tente de novo.',
    err_connect: 'Não foi possível conectar ao servidor. Verifique o endereço e tente de novo.',
    err_unknown: 'Algo deu errado: {message}',
    err_name_required: 'Digite um nome.',
    // Accounts (PROTOCOL 1.1)
    howToEnter: 'Como entrar',
    tabGuest: 'Convidado',
    tabSignIn: 'Entrar',
    tabSignUp: 'Criar conta',
    guestHint: 'Como convidado, o nome é seu só enquanto você está online, e as mensagens diretas não ficam guardadas.',
    accountName: 'Nome da conta',
    signIn: 'Entrar',
    signUp: 'Criar conta',
    signingIn: 'Entrando…',
    signingUp: 'Criando a conta…',
    signupLead: 'Com uma conta o nome é só seu, e suas salas e mensagens diretas ficam guardadas, em qualquer aparelho.',
    passwordRule: 'De 8 a 128 caracteres.',
    inviteCode: 'Código de convite',
    loginAsAccount: 'Entrar na conta {name}',
    noticeSessionEnded: 'Você saiu da conta neste aparelho: a sessão foi encerrada (em outro aparelho, ou a senha foi trocada). Entre de novo.',
    noticeSuspended: 'Esta conta foi suspensa pela administração do servidor.',
    noticeNoGuests: 'Este servidor não aceita convidados: entre com sua conta ou crie uma.',
    noticeSignedOut: 'Você saiu da conta.',
    accountSettings: 'Sua conta',
    signedInAs: 'Conectado como {name}.',
    signedInAsAdmin: 'Conectado como {name}, administrador deste servidor.',
    sessionsHeading: 'Onde você está conectado',
    thisDevice: 'Este aparelho',
    unknownDevice: 'Navegador desconhecido',
    lastSeen: 'Último acesso: {when}',
    signedInSince: 'desde {when}',
    justNow: 'agora',
    revokeSession: 'Desconectar',
    revokeSessionLabel: 'Desconectar {device}',
    revokeOthers: 'Sair em todos os outros aparelhos',
    revokedOthers: 'Os outros aparelhos saíram da conta.',
    changePassword: 'Trocar senha',
    currentPassword: 'Senha atual',
    newPassword: 'Nova senha',
    passwordChangeHint: 'De 8 a 128 caracteres. Os outros aparelhos saem da conta.',
    passwordChanged: 'Senha trocada. Os outros aparelhos saíram da conta.',
    notifications: 'Notificações',
    enableNotifications: 'Ativar notificações',
    notifyDefault: 'Desativadas. Ative para ser avisado de mensagens diretas e de menções ao seu nome quando esta aba não estiver à vista.',
    notifyGranted: 'Ativadas: mensagens diretas e menções ao seu nome avisam quando esta aba não está à vista.',
    notifyDenied: 'Bloqueadas neste navegador. Para ativar, permita notificações nas configurações do site.',
    notifyUnsupported: 'Este navegador não mostra notificações.',
    notifyDm: '{name} (mensagem direta)',
    notifyRoom: '{name} em #{room}',
    logoutTitleAccount: 'Sair da conta?',
    logoutTextAccount: 'Suas salas e mensagens diretas continuam guardadas. Entre de novo quando quiser, de qualquer aparelho.',
    logoutAccount: 'Sair da conta',
    dmWarnUnknownAccount: 'Se {name} tiver conta, a mensagem fica guardada até a pessoa entrar. Se for convidado, só chega se estiver online agora.',
    err_bad_credentials: 'Nome ou senha incorretos.',
    err_name_registered: '{name} é uma conta registrada: só quem tem a senha usa esse nome. Escolha outro nome, ou entre na conta.',
    err_sign_in_required: 'Este servidor não aceita convidados: entre com sua conta ou crie uma.',
    err_weak_password: 'A senha precisa ter de 8 a 128 caracteres.',
    err_registration_closed: 'Este servidor não aceita novas contas.',
    err_bad_invite: 'Para criar uma conta aqui é preciso um código de convite válido (peça a quem cuida do servidor).',
    err_register_name_taken: 'Esse nome já é de uma conta, ou alguém está usando agora. Escolha outro.',
    err_not_signed_in: 'Você não está mais conectado à conta. Entre de novo.',
    err_no_such_session: 'Essa sessão já tinha terminado.',
    err_forbidden_origin: 'O servidor recusou o pedido vindo deste endereço.',
    err_wait_seconds: 'Tentativas demais. Tente de novo em {s} s.',
    err_wait_minutes: 'Tentativas demais. Tente de novo em {m} min.',
    err_no_accounts: 'Este servidor não tem contas.',
    err_password_required: 'Digite a senha.',
    err_room_required: 'Digite o nome da sala.',
  },
  en: {
    skipToComposer: 'Skip to message box',
    loginTitle: 'Real-time chat',
    loginLead: 'Pick a name to get in. No sign-up, no password.',
    yourName: 'Your name',
    connect: 'Connect',
    connecting: 'Connecting…',
    language: 'Language',
    conversations: 'Conversations',
    closeMenu: 'Close menu',
    openMenu: 'Open menu',
    browseRooms: 'Browse rooms',
    yourRooms: 'Your rooms',
    noRoomsJoined: 'You have not joined any room yet.',
    directMessages: 'Direct messages',
    newDm: 'New direct message',
    dmTo: 'To',
    dmPlaceholder: 'Person’s name',
    open: 'Open',
    logout: 'Log out',
    logoutTitle: 'Log out?',
    logoutText: 'You leave every room, and your direct messages vanish from this page.',
    members: 'Members',
    leave: 'Leave room',
    closeConversation: 'Close',
    close: 'Close',
    roomsHeading: 'Rooms',
    refresh: 'Refresh',
    filterRooms: 'Filter rooms',
    noRooms: 'No rooms yet. Create the first one!',
    noRoomsMatch: 'No room by that name.',
    roomsShown: 'Showing {shown} of {total} rooms, by name.',
    roomsSearching: 'Looking for “{q}” in every room…',
    roomsFound: '{n} room with “{q}”.|{n} rooms with “{q}”.',
    roomsFoundSome: 'Showing {shown} of {total} rooms with “{q}”.',
    moreRooms: 'More rooms',
    loadingRooms: 'Loading rooms…',
    roomRemoved: 'Room {room} was removed from the server.',
    roomRemovedOpen: 'Room {room} was removed from the server, with its messages. You are back at the room list.',
    createRoom: 'Create a room',
    roomName: 'Room name',
    passwordOptional: 'Password (optional)',
    passwordHint: 'With a password, only those who know it can join.',
    createAndJoin: 'Create and join',
    messages: 'Messages',
    loadOlder: 'Load earlier messages',
    historyStart: 'This is the start of {room}.',
    dmStartGuest: 'Direct messages with {name}. They are not kept: they vanish when you leave or reload the page.',
    dmStartAccount: 'Direct messages with {name}. History is kept for accounts.',
    newMessages: 'New messages',
    jumpLatest: 'Jump to latest',
    emoji: 'Emoji',
    message: 'Message',
    messageTo: 'Message {name}',
    // Attachments (upload.js, attachments.js)
    attach: 'Attach files',
    attachGuest: 'Only people signed in to an account can send files.',
    dropHere: 'Drop the files to attach them',
    tooManyFiles: 'At most {n} files per message.',
    uploadingFile: 'Uploading {name}',
    uploadProgress: '{pct}% of {size}',
    uploadDone: '{name} is ready to send.',
    uploadCancel: 'Cancel uploading {name}',
    uploadRemove: 'Take {name} out of the message',
    uploadRetry: 'Try uploading {name} again',
    uploadWaiting: 'The message goes as soon as the files finish uploading.',
    uploadFixFirst: 'A file did not upload: try it again or take it out of the message before sending.',
    uploadTooLarge: 'Too large for this server.',
    uploadTooLargeLimit: 'Too large: the limit is {limit}.',
    uploadQuota: 'You reached your daily file quota.',
    uploadQuotaWait: 'You reached your daily file quota. Try again in {when}.',
    uploadRate: 'Too many files in a short time. Wait a little.',
    uploadRateWait: 'Too many files in a short time. Try again in {when}.',
    inSeconds: '{n} s',
    inMinutes: '{n} min',
    inHours: '{n} h',
    uploadNetwork: 'The connection failed during the upload. Try again.',
    openPicture: 'View {name} full size',
    openOriginal: 'Open the original in a new tab',
    closePicture: 'Close picture',
    downloadFile: 'Download {name}, {size}',
    err_no_such_file: 'One of the files is no longer on the server. Attach it again.',
    send: 'Send',
    composerHelp: 'Enter sends, Shift+Enter adds a line.',
    composerHelpTouch: 'Enter adds a line; the Send button sends.',
    password: 'Password',
    passwordPrompt: 'This room is protected. Enter its password to join.',
    passwordTitle: 'Join {room}',
    cancel: 'Cancel',
    join: 'Join',
    joined: 'Joined',
    protectedRoom: 'Password-protected room',
    memberCount: '{n} person|{n} people',
    online: 'Connected',
    offline: 'Offline',
    lobbyTitle: 'Browse rooms',
    lobbySub: 'Join a room or create your own',
    dmSub: 'Direct message',
    dmOnline: 'Online',
    dmOffline: 'Offline',
    dmWarnOffline: '{name} is not online. Direct messages only reach people who are online.',
    dmWarnUnknown: 'You are in no room together, so the page cannot tell whether {name} is online. If not, the message will not arrive.',
    you: 'you',
    sendDm: 'Direct message {name}',
    moreMembers: 'and {n} more',
    sysJoined: '{name} joined the room',
    sysLeft: '{name} left the room',
    sysYouJoined: 'You joined the room',
    sysDisconnected: 'Connection lost',
    sysReconnected: 'Reconnected',
    connLost: 'Connection lost. Reconnecting in {s} s…',
    connRetrying: 'Reconnecting…',
    connBack: 'Reconnected.',
    connNameWait: 'Waiting for the server to release your name…',
    connDown: 'Connection lost. Trying to reconnect…',
    retryNow: 'Retry now',
    roomGone: 'Room {room} no longer exists (the server restarted). It was removed from your list.',
    roomsGone: 'Rooms {rooms} no longer exist (the server restarted). They were removed from your list.',
    roomLocked: 'Could not get back into {rooms}: the password changed. Join again from the room list.',
    typingOne: '{a} is typing…',
    typingTwo: '{a} and {b} are typing…',
    typingMany: 'Several people are typing…',
    today: 'Today',
    yesterday: 'Yesterday',
    unread: '{n} unread|{n} unread',
    newFrom: 'New message from {name} in {conv}',
    err_bad_request: 'The server did not understand the request.',
    err_unknown_type: 'The server does not know that command.',
    err_not_identified: 'You are not connected yet.',
    err_already_identified: 'You are already connected.',
    err_invalid_name: 'Invalid name: use 1 to 32 characters.',
    err_name_taken: 'That name is taken. Pick another one.',
    err_invalid_room: 'Invalid room name: use 1 to 48 characters.',
    err_room_exists: 'A room with that name already exists.',
    err_no_such_room: 'That room does not exist.',
    err_wrong_password: 'Wrong password.',
    err_not_in_room: 'You are not in that room.',
    err_invalid_text: 'Empty or too long message (4000 characters at most).',
    err_invalid_password: 'Password too long (128 characters at most).',
    err_no_such_user: '{name} is not online.',
    err_rate_limited: 'Slow down! You are sending too fast. Try again in a moment.',
    err_create_rate_limited: 'You made too many rooms lately. Try again later.',
    err_too_many_rooms: 'The server holds as many rooms as it allows. Join one that exists.',
    err_unavailable: 'The server cannot save right now. Try again in a little while.',
    err_offline: 'No connection to the server. What you wrote stays here: send it once reconnected.',
    err_timeout: 'The server did not answer. Try again.',
    err_connect: 'Could not reach the server. Check the address and try again.',
    err_unknown: 'Something went wrong: {message}',
    err_name_required: 'Type a name.',
    howToEnter: 'How to get in',
    tabGuest: 'Guest',
    tabSignIn: 'Sign in',
    tabSignUp: 'Sign up',
    guestHint: 'As a guest the name is yours only while you are online, and direct messages are not kept.',
    accountName: 'Account name',
    signIn: 'Sign in',
    signUp: 'Create account',
    signingIn: 'Signing in…',
    signingUp: 'Creating the account…',
    signupLead: 'With an account the name is yours alone, and your rooms and direct messages are kept, on any device.',
    passwordRule: '8 to 128 characters.',
    inviteCode: 'Invite code',
    loginAsAccount: 'Sign in to {name}',
    noticeSessionEnded: 'You were signed out on this device: the session was ended (on another device, or the password was changed). Sign in again.',
    noticeSuspended: 'This account was suspended by the server’s admin.',
    noticeNoGuests: 'This server takes no guests: sign in to your account or create one.',
    noticeSignedOut: 'You signed out.',
    accountSettings: 'Your account',
    signedInAs: 'Signed in as {name}.',
    signedInAsAdmin: 'Signed in as {name}, this server’s admin.',
    sessionsHeading: 'Where you are signed in',
    thisDevice: 'This device',
    unknownDevice: 'Unknown browser',
    lastSeen: 'Last active: {when}',
    signedInSince: 'since {when}',
    justNow: 'just now',
    revokeSession: 'Sign out',
    revokeSessionLabel: 'Sign out {device}',
    revokeOthers: 'Sign out everywhere else',
    revokedOthers: 'Your other devices were signed out.',
    changePassword: 'Change password',
    currentPassword: 'Current password',
    newPassword: 'New password',
    passwordChangeHint: '8 to 128 characters. Your other devices are signed out.',
    passwordChanged: 'Password changed. Your other devices were signed out.',
    notifications: 'Notifications',
    enableNotifications: 'Turn on notifications',
    notifyDefault: 'Off. Turn them on to hear of direct messages and mentions of your name while this tab is out of sight.',
    notifyGranted: 'On: direct messages and mentions of your name notify you while this tab is out of sight.',
    notifyDenied: 'Blocked in this browser. To turn them on, allow notifications in the site’s settings.',
    notifyUnsupported: 'This browser does not show notifications.',
    notifyDm: '{name} (direct message)',
    notifyRoom: '{name} in #{room}',
    logoutTitleAccount: 'Sign out?',
    logoutTextAccount: 'Your rooms and direct messages are kept. Sign in again whenever you like, from any device.',
    logoutAccount: 'Sign out',
    dmWarnUnknownAccount: 'If {name} has an account, the message is kept until they sign in. If they are a guest, it arrives only if they are online now.',
    err_bad_credentials: 'Wrong name or password.',
    err_name_registered: '{name} is a registered account: only whoever has its password uses that name. Pick another name, or sign in to the account.',
    err_sign_in_required: 'This server takes no guests: sign in to your account or create one.',
    err_weak_password: 'The password must be 8 to 128 characters.',
    err_registration_closed: 'This server takes no new accounts.',
    err_bad_invite: 'Creating an account here takes a valid invite code (ask whoever runs the server).',
    err_register_name_taken: 'That name belongs to an account, or someone is using it now. Pick another.',
    err_not_signed_in: 'You are no longer signed in. Sign in again.',
    err_no_such_session: 'That session had already ended.',
    err_forbidden_origin: 'The server refused a request from this address.',
    err_wait_seconds: 'Too many tries. Try again in {s} s.',
    err_wait_minutes: 'Too many tries. Try again in {m} min.',
    err_no_accounts: 'This server has no accounts.',
    err_password_required: 'Type the password.',
    err_room_required: 'Type the room name.',
  },
};

export const LANGS = Object.keys(STRINGS);

let current = pickInitialLang();
const listeners = new Set();

// A saved choice wins; otherwise any Portuguese browser gets pt-BR and everyone else English.
function pickInitialLang() {
  const saved = safeGet(LANG_KEY);
  if (saved && STRINGS[saved]) return saved;
  const wanted = navigator.languages?.length ? navigator.languages : [navigator.language || 'en'];
  for (const tag of wanted) {
    const lower = String(tag).toLowerCase();
    if (lower.startsWith('pt')) return 'pt-BR';
    if (lower.startsWith('en')) return 'en';
  }
  return 'en';
}

// localStorage can throw (privacy modes, sandboxed frames); the page must still work.
export function safeGet(key) {
  try { return localStorage.getItem(key); } catch { return null; }
}
export function safeSet(key, value) {
  try { localStorage.setItem(key, value); } catch { /* not persisted: fine */ }
}

export function lang() { return current; }

export function setLang(next) {
  if (!STRINGS[next] || next === current) return;
  current = next;
  safeSet(LANG_KEY, next);
  for (const fn of listeners) fn(next);
}

export function onLangChange(fn) { listeners.add(fn); }

// t('key', {n: 2}) fills {placeholders}; "one|many" strings choose by params.n.
export function t(key, params = {}) {
  let s = STRINGS[current][key] ?? STRINGS.en[key] ?? key;
  if (s.includes('|') && typeof params.n === 'number') {
    const [one, many] = s.split('|');
    s = params.n === 1 ? one : many;
  }
  return s.replace(/\{(\w+)\}/g, (m, name) => {
    if (!(name in params)) return m;
    const value = params[name];
    return typeof value === 'number' ? formatNumber(value) : String(value);
  });
}

// 7000 rooms read "7.000" in Portuguese and "7,000" in English.
const numberFormats = new Map();
export function formatNumber(n) {
  if (!numberFormats.has(current)) numberFormats.set(current, new Intl.NumberFormat(current));
  return numberFormats.get(current).format(n);
}

// Static text in index.html carries data-i18n* attributes; this fills them for the current language.
export function translateDom(root = document) {
  document.documentElement.lang = current;
  for (const el of root.querySelectorAll('[data-i18n]')) el.textContent = t(el.dataset.i18n);
  for (const el of root.querySelectorAll('[data-i18n-placeholder]')) el.placeholder = t(el.dataset.i18nPlaceholder);
  for (const el of root.querySelectorAll('[data-i18n-aria-label]')) el.setAttribute('aria-label', t(el.dataset.i18nAriaLabel));
  for (const el of root.querySelectorAll('[data-i18n-title]')) el.title = t(el.dataset.i18nTitle);
}

const timeFormats = new Map();
function fmt(kind) {
  const key = `${current}:${kind}`;
  if (!timeFormats.has(key)) {
    const opts = kind === 'time'
      ? { hour: '2-digit', minute: '2-digit' }
      : kind === 'day'
        ? { weekday: 'long', day: 'numeric', month: 'long' }
        : { dateStyle: 'full', timeStyle: 'medium' };
    timeFormats.set(key, new Intl.DateTimeFormat(current, opts));
  }
  return timeFormats.get(key);
}

export function formatTime(ts) { return fmt('time').format(new Date(ts)); }
export function formatFull(ts) { return fmt('full').format(new Date(ts)); }

// "Hoje", "Ontem", or the weekday and date, for day separators.
export function formatDay(ts) {
  const d = new Date(ts);
  const today = new Date();
  const startOf = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diffDays = Math.round((startOf(today) - startOf(d)) / 86400000);
  if (diffDays === 0) return t('today');
  if (diffDays === 1) return t('yesterday');
  return fmt('day').format(d);
}
