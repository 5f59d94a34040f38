"""Prompt-injection patterns beyond English, French, German and Spanish, and for tool hijacking.

Multilingual: per language, in its own script, the words of the three commonest attacks (OWASP LLM01):
"ignore / forget" next to "(previous) instructions / rules", "system prompt / hidden instructions" next
to "your" or "show / print", and "answer ... without any restrictions". Languages: Italian, Portuguese,
Dutch, Polish, Russian, Ukrainian, Chinese, Japanese, Korean, Arabic, Hebrew, Turkish, Hindi, Indonesian
and Malay, Vietnamese, Greek, Swahili, Czech, Swedish, Danish, Norwegian, Finnish, Romanian, Hungarian,
Thai, Persian, Bengali, Tagalog. A word alone never counts ("ignore my last message", "the rules of chess",
"unlimited data" pass): only the pair within one sentence.

Tool hijacking (Greshake et al. 2023; OWASP LLM06 excessive agency): fake function-call JSON or
``<tool_call>`` markup in content, fake tool results that carry orders, markdown or HTML images whose URL
query carries data, orders to the assistant to send, transfer or delete, and secrets sent to an address.
"""

from __future__ import annotations

_B = r"(?<![^\W\d_])"  # a word starts here: no letter before it


def _spaced(*alternatives: str) -> str:
    """Whole words (languages written with spaces): no letter just before or after the match."""
    return rf"{_B}(?:{'|'.join(alternatives)})(?!\w)"


_GAP = r"[^.!?\n。！？]{0,40}"
_NOT = r"(?<!\bnon )(?<!\bnão )(?<!\bnao )(?<!\bnie )(?<!\bне )(?<!\bnu )(?<!\bne )(?<!\bälä )(?<!\bjangan )(?<!\bđừng )(?<!אל )"

# "ignore / forget / disregard", imperatives only ("I forgot the rules", "don't forget the rules" pass)
_IGNORE = "|".join(
    [
        _NOT
        + _spaced(
            r"ignor\w*|dimentica|dimenticate|trascura|non (seguire|tenere conto di|considerare)",  # it, pt, ro, sv...
            r"esque[çc]a|esquece|desconsider\w*|descarte|n[ãa]o (siga|obede[çc]a)",  # pt
            r"negeer|vergeet(?! niet)|zie af van",  # nl
            r"zignoruj\w*|zapomnij|nie (zwracaj uwagi na|stosuj się do)",  # pl
            r"(про)?игнорируй\w*|забудь\w*|не обращай внимания на|отбрось|забей на",  # ru
            r"(про)?ігноруй\w*|не звертай уваги на",  # uk
            r"تجاهل\w*|انس[َ]?|إنس[َ]?|تناس[َ]?|لا تلتزم ب\w*",  # ar
            r"התעלמ(ו|י)?|תתעלמ(ו|י)?|שכח(ו|י)?|תשכח(ו|י)?",  # he
            r"unut(un)?|yok say\w*|g[öo]rmezden gel\w*|dikkate alma\w*",  # tr
            r"भूल जाओ|भूल जाएं|भूल जाइए|अनदेखा करो|अनदेखा करें|नज़रअंदाज़ करो|नजरअंदाज करो",  # hi
            r"abaikan|lupakan|jangan (ikuti|hiraukan|pedulikan)",  # id, ms
            r"b[ỏo] qua|h[ãa]y qu[êe]n|qu[êe]n h[ếe]t|qu[êe]n (đi|t[ấa]t c[ảa])|ph[ớo]t l[ờo]|l[ờo] đi",  # vi
            r"αγν[οό]ησ[εέ]\w*|ξ[εέ]χασ[εέ]\w*|παρ[αά]βλεψ[εέ]\w*",  # el
            r"puuza|sahau|usifuate|achana na",  # sw
            r"zapome[ňn](te)?|nedbej na|neber ohled na",  # cs
            r"gl[öo]m(?! inte)|strunta i|bortse fr[åa]n|glem(?! ikke)|se bort fra",  # sv, da, no
            r"unohda|ohita|sivuuta",  # fi
            r"uit[ăa]",  # ro
            r"hagyd figyelmen k[íi]v[üu]l|felejtsd el|ne vedd figyelembe",  # hu
            r"نادیده بگیر\w*|فراموش کن\w*",  # fa
            r"উপেক্ষা কর\w*|ভুলে যাও",  # bn
            r"huwag pansinin|kalimutan",  # tl
        ),
        r"(?<!我)(?<!别)(?<!別)(?<!不要)(?<!不能)(?<!勿)(忽略|忽视|忽視|无视|無視|忘记|忘記|忘掉|不要理会|不要理會|抛开|拋開|别管|別管)",  # zh
        r"忘れて|忘れろ|忘れなさい|無視して|無視しろ|無視せよ",  # ja
        r"잊어버리고|잊어버려|잊어라|잊고|무시하고|무시해(?!도)|무시하세요|무시하십시오|무시해라",  # ko
        r"(?<!อย่า)(เพิกเฉย|ละเว้น|ลืม)",  # th
    ]
)
# "instructions / rules / directives / guidelines"
_ORDERS = "|".join(
    [
        _spaced(
            r"istruzion[ie]|regole|direttive|indicazioni",  # it
            r"instru[çc][õo]es|regras|diretrizes",  # pt
            r"instructies|regels|richtlijnen|opdrachten",  # nl
            r"instrukcj\w*|zasad\w*|polece[ńn]\w*|regu[łl]\w*|wytyczn\w*",  # pl
            r"инструкци\w*|правил(а|ам|ами|ах|о)?|указани\w*|ограничени\w*",  # ru
            r"інструкці\w*|вказів\w*|обмежен\w*",  # uk
            r"(ال)?تعليمات\w*|(ال)?قواعد\w*|الأوامر|(ال)?إرشادات|القيود",  # ar
            r"(ה)?הוראות|(ה)?כללים|(ה)?הנחיות|(ה)?חוקים",  # he
            r"talimat\w*|kural\w*|y[öo]nerge\w*|komut\w*",  # tr
            r"निर्देश\w*|नियम\w*|हिदायत\w*",  # hi
            r"instruksi|aturan\w*|perintah\w*|arahan|petunjuk",  # id, ms
            r"h[ưu][ớo]ng d[ẫa]n|ch[ỉi] d[ẫa]n|quy t[ắa]c|ch[ỉi] th[ịi]|quy đ[ịi]nh",  # vi
            r"οδηγ[ίι]\w*|καν[όο]ν\w*|εντολ\w*|περιορισμ\w*",  # el
            r"maagizo|maelekezo|sheria|kanuni|amri",  # sw
            r"pokyn\w*|instrukc\w*|pravid\w*|p[řr][íi]kaz\w*|omezen[íi]",  # cs
            r"instruktion\w*|instruksjon\w*|regler\w*|riktlinjer\w*|retningslinjer\w*|direktiv\w*",  # sv da no
            r"ohjee\w*|ohjeet|s[äa][äa]nn\w*",  # fi
            r"instruc[țt]iun\w*|regulil\w*",  # ro
            r"utas[íi]t[áa]s\w*|szab[áa]ly\w*",  # hu
            r"دستورالعمل\w*|دستورات|قوانین\w*",  # fa
            r"নির্দেশ\w*|নিয়ম\w*",  # bn
            r"tagubilin|panuto|patakaran",  # tl
        ),
        r"指令|指示|规则|規則|提示词|提示詞|ルール|制約|지시|지침|규칙|คำสั่ง|กฎ",  # zh, ja, ko, th
    ]
)
# "system prompt / hidden (secret, internal) instructions"
_SYSTEM_PROMPT = "|".join(
    [
        r"prompt di sistema|istruzioni (nascoste|segrete|di sistema|iniziali)",
        r"prompt (do|de) sistema|instru[çc][õo]es (ocultas|secretas|do sistema|iniciais)",
        r"systeemprompt|systeem-prompt|verborgen instructies|geheime instructies",
        r"prompt\w* systemow\w*|instrukcj\w* systemow\w*|ukryt\w* instrukcj\w*",
        r"системн\w* (промпт\w*|подсказк\w*|инструкци\w*)|скрыт\w* (инструкци\w*|указани\w*)",
        r"системн\w* (промпт\w*|інструкці\w*)|прихован\w* (інструкці\w*|вказівк\w*)",
        r"系统提示|系統提示|系统指令|系統指令|隐藏指令|隱藏指令|隐藏的指令|初始指令",
        r"システムプロンプト|隠された指示|隠し指示|内部指示|秘密の指示",
        r"시스템 ?프롬프트|숨겨진 (지침|지시)|내부 지침|비밀 지침",
        r"موجه النظام|تعليمات النظام|التعليمات (المخفية|السرية)",
        r"הנחיית המערכת|פרומפט המערכת|הוראות המערכת|(ה)?הוראות (ה)?(נסתרות|סודיות)",
        r"sistem (istemi\w*|komutu\w*|talimat\w*|promptu\w*)|gizli talimat\w*",
        r"सिस्टम प्रॉम्प्ट|सिस्टम प्रोम्प्ट|छिपे हुए निर्देश|गुप्त निर्देश",
        r"prompt sistem|instruksi (sistem|tersembunyi|rahasia)|arahan (sistem|tersembunyi)",
        r"l[ờo]i nh[ắa]c h[ệe] th[ốo]ng|prompt h[ệe] th[ốo]ng|(ch[ỉi] d[ẫa]n|h[ưu][ớo]ng d[ẫa]n) (ẩn|bí mật|h[ệe] th[ốo]ng)",
        r"προτροπ\w* συστ[ήη]ματος|οδηγ\w* συστ[ήη]ματος|κρυφ\w* οδηγ\w*|μ[ήη]νυμα συστ[ήη]ματος",
        r"maagizo ya (mfumo|siri)|maelekezo ya (mfumo|siri)|maagizo yaliyofichwa",
        r"syst[ée]mov\w* (prompt\w*|instrukc\w*|pokyn\w*)|skryt\w* (pokyn\w*|instrukc\w*)",
        r"systemprompt\w*|systeminstruktion\w*|dolda instruktioner\w*|skjulte instruk\w*",
        r"j[äa]rjestelm[äa]kehot\w*|piilotet\w* ohje\w*",
        r"promptul de sistem|instruc[țt]iunile ascunse",
        r"rendszerprompt\w*|rejtett utas[íi]t[áa]s\w*",
        r"พรอมต์ระบบ|คำสั่งระบบ|คำสั่งที่ซ่อน",
        r"پرامپت سیستم|دستورالعمل\S* سیستم|دستورات پنهان",
        r"সিস্টেম প্রম্পট|লুকানো নির্দেশ",
    ]
)
# "show / print / reveal / repeat" and "your" (writing or explaining a system prompt passes)
_REVEAL = "|".join(
    [
        _spaced(
            r"mostra\w*|rivela\w*|stampa|ripeti|tuo|tue|tuoi",
            r"mostre|revele|imprima|repita|seu|sua|teu|tua",
            r"laat\w* zien|toon|herhaal|jouw|je",
            r"poka[żz]\w*|wypisz|ujawnij|powt[óo]rz|tw[óo]j|swoj\w*|sw[óo]j",
            r"покажи|выведи|повтори|раскрой|твой|твои|свой|свои",
            r"виведи|розкрий|твій|твої|свій|свої",
            r"اعرض|أظهر|اطبع\w*|الخاص بك",
            r"הצג|תראה|הדפס|שלך",
            r"g[öo]ster|yazd[ıi]r|senin",
            r"दिखाओ|दिखाएं|तुम्हारा|तुम्हें|अपना",
            r"tampilkan|tunjukkan|cetak|kamu|anda",
            r"hi[ểe]n th[ịi]|in ra|c[ủu]a b[ạa]n",
            r"δε[ίι]ξε|δε[ίι]ξ\w*|εμφ[άα]νισε|σου",
            r"nionyeshe|onyesha|uliyopewa|yako|zako",
            r"vypi[šs]|uka[žz]|prozra[ďd]|tv[ůu]j|sv[ůu]j|sv[ée]",
            r"visa|skriv ut|vis|din|dina|dine",
            r"n[äa]yt[äa]|sinun",
            r"arat[ăa]|t[ăa]u|tale",
            r"mutasd",
            r"نشان بده|خودت",
            r"দেখাও|তোমার",
        ),
        r"显示|顯示|打印|输出|輸出|发给我|發給我|你的|表示して|出力|見せて|あなたの|보여|출력|너의|당신의|네 |แสดง|ของคุณ",
    ]
)
# "without (any) restrictions / filters / censorship"; with "answer" or "you are now" near it
_UNRESTRICTED = "|".join(
    [
        r"senza (alcun\w* )?(restrizion\w*|filtr\w*|limit\w*|censura)",
        r"sem (nenhum\w* |qualquer )?(restri[çc][õo]es|filtros?|limites?|censura)",
        r"zonder (enige )?(beperkingen|filters?|regels|censuur)",
        r"bez (żadnych )?(ogranicze[ńn]|filtr[óo]w|cenzury)",
        r"без (каких-либо |всяких |любых )?(ограничений|фильтр\w*|цензуры)",
        r"без (жодних )?(обмежень|фільтр\w*|цензури)",
        r"没有任何限制|不受任何限制|没有限制|無任何限制|沒有任何限制|不受限制",
        r"制限なし|制限なく|制限のない|フィルターなし",
        r"제한 ?없이|제한이 없는|필터 ?없이|검열 ?없이|검열 없는",
        r"(دون|بدون|بلا) (أي )?(قيود|فلترة|رقابة)",
        r"(ללא|בלי) (שום )?(הגבלות|מגבלות|סינון|צנזורה)",
        r"(hi[çc]bir )?k[ıi]s[ıi]tlama olmadan|filtresiz|sans[üu]rs[üu]z",
        r"बिना किसी (रोक-टोक|प्रतिबंध|सीमा|पाबंदी)|बिना सेंसर",
        r"tanpa (batasan|filter|sensor)",
        r"kh[ôo]ng (c[óo] )?(b[ấa]t k[ỳy] )?gi[ớo]i h[ạa]n|kh[ôo]ng ki[ểe]m duy[ệe]t",
        r"χωρ[ίι]ς (κανέν\w* )?(περιορισμ\w*|φ[ίι]λτρα|λογοκρισ[ίι]α)",
        r"bila (vikwazo|vizuizi|mipaka|udhibiti)|isiyo na udhibiti",
        r"bez (jak[ýy]chkoliv?|[žz][áa]dn[ýy]ch )?(omezen[íi]|filtr[ůu]|cenzury)",
        r"utan (n[åa]gra )?(begr[äa]nsningar|filter|censur)|uden begr[æa]nsninger|uten begrensninger",
        r"ilman (rajoituksia|suodattimia|sensuuria)",
        r"f[ăa]r[ăa] (nicio )?(restric[țt]i\w*|limit\w*|filtre|cenzur[ăa])",
        r"korl[áa]toz[áa]s(ok)? n[ée]lk[üu]l|sz[űu]r[ée]s n[ée]lk[üu]l",
        r"ไม่มีข้อจำกัด",
        r"بدون (هیچ )?محدودیت",
        r"কোনো সীমাবদ্ধতা ছাড়া",
    ]
)
_ANSWER = "|".join(
    [
        _spaced(
            r"rispond\w*|d'ora in poi|da (ora|questo momento)|sei",
            r"respond\w*|responda|a partir de agora|voc[êe] [ée]",
            r"antwoord\w*|beantwoord\w*|vanaf nu|je bent( nu)?",
            r"odpowiadaj\w*|odpowiedz|od teraz|jeste[śs]",
            r"отвечай|ответь|теперь ты|с этого момента|отныне",
            r"відповідай|тепер ти|відтепер",
            r"أجب|من الآن|أنت( الآن)?",
            r"תענה|עני|מעכשיו|אתה עכשיו|את עכשיו",
            r"cevap ver|yan[ıi]tla|bundan sonra|art[ıi]k sen",
            r"जवाब दो|उत्तर दो|अब से",
            r"jawab\w*|mulai sekarang|kamu adalah",
            r"tr[ảa] l[ờo]i|t[ừu] (gi[ờo]|b[âa]y gi[ờo])|b[ạa]n l[àa]",
            r"απ[άα]ντα\w*|απ[όο] τ[ώω]ρα|ε[ίι]σαι",
            r"jibu|kuanzia sasa|wewe ni",
            r"odpov[íi]dej|od te[ďd]|jsi",
            r"svara|fr[åa]n och med nu|du [äa]r|svar|fra n[åa] af",
            r"vastaa|t[äa]st[äa] l[äa]htien",
            r"r[ăa]spunde|de acum",
            r"v[áa]laszolj|mostant[óo]l",
            r"جواب بده|از حالا",
            r"উত্তর দাও|এখন থেকে",
        ),
        r"回答|回复|從現在|从现在|你是|答え|今から|あなたは|답해|대답|지금부터|너는|ตอบ|ตั้งแต่นี้",
    ]
)

# Every multilingual pattern needs one of these (lower-case) substrings: texts without any skip them,
# which keeps the scanner's cost on English text where it was (tested against the patterns).
_GATE_WORDS = (
    "istruzion|regol|diretti|indicazion|instruç|instructies|instructiun|instrukc|instruksi|"
    "instrukt|instruksj|instrucț|regra|diretriz|regel|richtlijn|opdracht|zasad|polece|reguł|"
    "regulil|reguli|wytyczn|инструкц|правил|указан|ограничен|інструкц|вказів|обмежен|تعليمات|"
    "قواعد|الأوامر|إرشادات|القيود|הוראות|כללים|הנחיות|חוקים|talimat|kural|yönerge|yonerge|"
    "komut|निर्देश|नियम|हिदायत|aturan|perintah|arahan|petunjuk|hướng dẫn|huong dan|chỉ dẫn|"
    "chi dan|quy tắc|quy tac|chỉ thị|chi thi|quy định|quy dinh|οδηγ|κανόν|κανον|εντολ|"
    "περιορισμ|maagizo|maelekezo|sheria|kanuni|amri|pokyn|pravid|příkaz|prikaz|omezen|"
    "riktlinjer|retningslinjer|direktiv|ohje|sään|saan|utasít|utasit|szabály|szabaly|دستور|"
    "قوانین|নির্দেশ|নিয়ম|tagubilin|panuto|patakaran|指令|指示|规则|規則|提示|ルール|制約|지시|지침|규칙|คำสั่ง|กฎ|"
    "คำแนะนำ|systemprompt|systeminstruk|systeem|systemow|промпт|подсказк|системн|プロンプト|프롬프트|隠|"
    "内部指示|秘密|숨겨진|내부|비밀|موجه|النظام|הנחיית|פרומפט|sistem|सिस्टम|छिपे|गुप्त|hệ thống|he thong|ẩn|"
    "προτροπ|συστήματος|συστηματος|κρυφ|mfumo|siri|yaliyofichwa|systém|dolda|skjulte|"
    "järjestelmä|jarjestelma|piilotet|ascunse|rendszer|rejtett|ระบบ|ซ่อน|سیستم|پنهان|সিস্টেম|"
    "লুকানো|assistent|asystent|ассистент|асистент|помощник|助手|アシスタント|エージェント|aiへ|어시스턴트|에이전트|"
    "المساعد|النموذج|asisten|asistan|yapay zek|trợ lý|tro ly|βοηθ|msaidizi|agente|modelu|модел|"
    "模型|モデル|모델|ai-assistent|ia:| ia.| ia |wakala|ии|ші|للمساعد|للنموذج|voor de ai|aan de ai|"
    "per l'ia|all'ia|para a ia|para la ia|dla ai|pro ai|untuk ai|cho ai|kwa ai|för ai|for ai|"
    "ai için|senza|sem |zonder|bez |без|限制|制限|フィルター|제한|필터|검열|قيود|فلترة|رقابة|הגבלות|מגבלות|"
    "סינון|צנזורה|kısıtlama|kisitlama|filtresiz|sansürsüz|sansursuz|बिना|tanpa|giới hạn|"
    "gioi han|kiểm duyệt|kiem duyet|χωρίς|χωρις|bila |udhibiti|utan |uden |uten |ilman|fără|"
    "fara |nélkül|nelkul|ข้อจำกัด|محدودیت|সীমাবদ্ধতা"
)
GATE = tuple(_GATE_WORDS.split("|"))


def gated(text: str) -> bool:
    """True when ``text`` holds a word the multilingual patterns need (a substring test: fast)."""
    low = text.lower()
    return any(word in low for word in GATE)


MULTILINGUAL: dict[str, list[tuple[str, float]]] = {
    "instruction_override": [
        (rf"({_IGNORE}){_GAP}({_ORDERS})|({_ORDERS}){_GAP}({_IGNORE})", 0.9),
    ],
    "system_prompt_extraction": [
        (rf"({_REVEAL}){_GAP}({_SYSTEM_PROMPT})|({_SYSTEM_PROMPT}){_GAP}({_REVEAL})", 0.9),
        (_SYSTEM_PROMPT, 0.6),
    ],
    "indirect": [
        (
            _spaced(
                r"nota|messaggio|istruzion[ei]|instru[çc][ãa]o|mensagem|opmerking|bericht|instructie|uwaga|"
                r"wskaz[óo]wka|instrukcja|примечание|инструкция|сообщение|примітка|інструкція|повідомлення|"
                r"ملاحظة|تعليمات|הערה|הוראה|not|notu|talimat|catatan|pesan|instruksi|ghi ch[úu]|l[ưu]u [ýy]|"
                r"σημε[ίι]ωση|οδηγ[ίι]α|ujumbe|maagizo|pozn[áa]mka|pokyn|zpr[áa]va|anteckning|meddelande"
            )
            + r"\s+(per|para|voor|aan|dla|для|pro|için|untuk|cho|για|kwa|till|for|lle|a)\s+(l'|la |o |a |de |het |il |lo )?"
            + _spaced(
                r"ai|ia|ki|ии|ші|assistente(?! (social\w*|sanitari\w*|di volo|amministrativ\w*))|assistent(en|in|ei|a|y)?|"
                r"asystent\w*|ассистент\w*|асистент\w*|помощник\w*|модел\w*|model\w*|agent\w*|asisten|asistan|"
                r"trợ lý|βοηθ\w*|msaidizi|agente|الذكاء|النموذج|للمساعد|"
                r"(ה)?(עוזר|מודל|בוט)"
            ),
            0.9,
        ),
        (
            r"(给|給|致)(AI|人工智能)?(助手|模型|代理)|(AI|アシスタント|モデル|エージェント)へ(の(注意|指示|メッセージ|お願い))?[:：]"
            r"|(AI|인공지능)? ?(어시스턴트|에이전트|모델)에게|إلى (المساعد|النموذج|الذكاء الاصطناعي)|ملاحظة لل(مساعد|نموذج)"
            r"|asistana|yapay zek[aâ] için|msaidizi wa ai",
            0.9,
        ),
    ],
    "role_play": [
        (rf"({_ANSWER}){_GAP}({_UNRESTRICTED})|({_UNRESTRICTED}){_GAP}({_ANSWER})", 0.9),
    ],
}

_AGENT = r"(AI|A\.I\.|assistant|agent|model|LLM|bot|chatbot|copilot)"
_SECRET = (
    r"(passwords?|credentials|api[ _-]?keys?|secrets?|\.env\b|id_rsa|private keys?|session cookies?|"
    r"one-time (code|password)|2fa code|card (number|details)|(chat|conversation|message) history|"
    r"(whole|entire|full) (conversation|chat)|this (conversation|chat)|system prompt|/etc/(passwd|shadow))"
)
_RISKY = (
    r"(send_\w+|\w*transfer\w*|wire_\w+|delete_\w+|\w+_delete|remove_\w+|drop_\w+|grant_\w+|\w*permissions?\w*|"
    r"share_\w+|upload_\w+|forward_\w+|payments?\w*|refund\w*|disable_\w+|reset_\w+|change_\w+|create_api_key|"
    r"run_shell|exec_\w+|http_(get|post)|post_message)"
)
_ACT = r"(call|invoke|run|use|send|forward|transfer|delete|upload|grant|revoke|change|replace|email|post|fetch|open|share|pay|move|buy)"

TOOL_HIJACK: dict[str, list[tuple[str, float]]] = {
    "tool_hijack": [
        # a function call written into content: <tool_call>, <function_call>, "tool_calls": [...]
        (r"</?(tool_call|function_call|tool_use)\b|\"tool_calls\"\s*:\s*\[", 0.9),
        # fake call JSON naming a risky action: {"name": "delete_files", "arguments": ...}
        (
            rf"\{{\s*\"(name|function|tool)\"\s*:\s*\"{_RISKY}\"\s*,\s*\"(arguments|args|input|parameters)\"",
            0.9,
        ),
        # an image whose URL query carries data: ![x](https://host/p?d={secret}), <img src="...?k=KEY">
        (
            r"(!\[[^\]\n]*\]\(|<img\b[^>\n]*\bsrc=[\"']?)https?://[^\s)\"'>]*\?[^\s)\"'>]*=[^\s)\"'>]*"
            r"([{<\[$]|(?-i:\b[A-Z][A-Z_]{3,}\b)|secret|token|password|history|chat|conversation|summary|cookie)",
            0.9,
        ),
        # a tool result that gives orders to the model
        (
            rf"\b(tool|function|plugin|api|search|observation)\s*(output|result|response|message)?\s*[:\]]"
            rf"[^\n]{{0,160}}(\b({_AGENT}|SYSTEM|instructions?)\b[^\n]{{0,40}}\b(must|should|shall|needs? to|now|next)\b"
            rf"[^\n]{{0,20}}|\b(now|next|immediately|first) ){_ACT}\b",
            0.9,
        ),
        # steps for the agent, and data appended to a URL: "fetch https://x/?c= plus the user's cookie"
        (rf"\b(next )?(step|task|action|instructions?) for (the |any |an? )?(\w+ ){{0,2}}{_AGENT}\s*:", 0.9),
        (
            r"https?://\S+[?&][\w-]+=\s*(\+|plus|followed by|and (then )?(append|add)|with)\s+(the |your |their )?"
            r"(user'?s?|contents?|full|whole|entire|api|session|password|secret|token|key|conversation|chat|notes)",
            0.9,
        ),
        # the model addressed, then told to use a risky tool
        (
            rf"\b{_AGENT}\s*[:,]\s*[^\n]{{0,80}}\b(call|invoke|run|use|execute|trigger)\s+(the\s+)?{_RISKY}",
            0.9,
        ),
        # a secret sent to an outside address
        (
            r"\b(send|forward|email|e-mail|post|upload|transfer|share|leak|exfiltrate|paste|text)\b[^.\n]{0,80}"
            rf"\b{_SECRET}[^.\n]{{0,80}}(https?://|\b[\w.+-]+@[\w-]+\.[\w.]+)",
            0.9,
        ),
        # acting behind the user's back
        (
            rf"\b{_ACT}\b[^.\n]{{0,120}}\b(without (telling|notifying|informing) (the user|them|anyone|him|her)"
            r"|without the user'?s? (knowing|knowledge|consent|noticing)"
            r"|(do not|don'?t|never) (tell|mention|inform|notify|alert) (the user|them|anyone|him|her|it|this|that|anything)"
            r"|tell the user (that )?(nothing|everything is fine)"
            r"|the user (will not|won'?t) (see|notice|know))",
            0.9,
        ),
    ],
}
