import os; os.environ["TF_CPP_MIN_LOG_LEVEL"]="3"
import keras
from keras import layers
names=["a\x1bMb","c\x1bcd","e\x9bf","g\u202eh","L"*300, "x\x07y\x00z"[:3]+"q", "t\tab\nnl", "r\x1b]0;pwned\x07s"]
i=keras.Input((4,),name="in\x1b[31mput")
h=i
ok=[]
for n in names:
    try:
        h=layers.Dense(4,name=n)(h); ok.append(n)
    except Exception as e: print("reject",repr(n)[:40],e)
m=keras.Model(i,h,name="mod\u202eel\x1bc")
m.save("hostile.keras")
print([repr(n)[:30] for n in ok])
