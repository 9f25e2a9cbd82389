"""English function words that may not begin or end a mined term ("of the", "the licensee", "such party").

Written out here because none of the project's dependencies ships a stopword list (wordfreq gives frequencies, not
word classes, and a frequency cut would also drop "law" or "party"). The list is the usual closed classes:
articles, pronouns, prepositions, conjunctions, auxiliaries and modals, plus a few generic quantifiers and
reference words ("such", "herein", "thereof") that legal and scientific prose uses as glue.
"""

from __future__ import annotations

_WORDS = """
    a about above across after afterwards again against all almost alone along already also although always am
    among amongst an and another any anyhow anyone anything anyway anywhere are around as at be became because
    become becomes becoming been before beforehand behind being below beside besides between beyond both but by
    can cannot could did do does doing done down due during each either else elsewhere enough etc even ever every
    everyone everything everywhere except few for former formerly from further had has have having he hence her
    here hereafter hereby herein hereinafter hereof hereto hereunder hers herself him himself his how however i
    ie if in inc indeed into is it its itself just last latter latterly least less many may me meanwhile might
    mine more moreover most mostly much must my myself namely neither never nevertheless next no nobody none
    noone nor not nothing now nowhere of off often on once one only onto or other others otherwise our ours
    ourselves out over own per perhaps please rather re same shall she should since so some somehow someone
    something sometime sometimes somewhere still such than that the their theirs them themselves then thence
    there thereafter thereby therefor therefore therein thereof thereon thereto thereunder thereupon these they
    this those though through throughout thru thus to together too toward towards under unless until up upon us
    very via was we well were what whatever when whence whenever where whereas whereby wherein whereof whereupon
    wherever whether which while whither who whoever whole whom whose why will with within without would yet you
    your yours yourself yourselves s t e g eg i.e e.g ll ve d m o y
"""
ENGLISH_STOPWORDS: frozenset[str] = frozenset(_WORDS.split())
