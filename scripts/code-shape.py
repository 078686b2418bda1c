#!/usr/bin/env python3
"""The code's shape, as issue #20 counts it: files over 450 lines of code
before their #[cfg(test)] module, and functions over 60 lines.
A rough brace counter, not a parser. Usage: python3 scripts/code-shape.py [src]"""
import os,re,sys
root=sys.argv[1] if len(sys.argv)>1 else 'src'
longf=[];bigfiles=[]
for d,_,fs in os.walk(root):
  for f in fs:
    if not f.endswith('.rs'): continue
    p=os.path.join(d,f); lines=open(p).read().split('\n')
    # code lines before #[cfg(test)]
    end=len(lines)
    for i,l in enumerate(lines):
      if l.strip()=='#[cfg(test)]': end=i;break
    code=[l for l in lines[:end] if l.strip() and not l.strip().startswith('//')]
    if len(code)>450: bigfiles.append((len(code),p))
    # functions
    i=0
    while i<end:
      l=lines[i]
      m=re.match(r'\s*(pub(\([^)]*\))?\s+)?(async\s+)?(const\s+)?(unsafe\s+)?fn\s+(\w+)',l)
      if m:
        depth=0;started=False;j=i
        while j<len(lines):
          s=lines[j]
          # strip strings crude
          s=re.sub(r'"(\\.|[^"\\])*"','""',s); s=re.sub(r"'(\\.|[^'\\])'","''",s)
          s=s.split('//')[0]
          for c in s:
            if c=='{': depth+=1;started=True
            elif c=='}': depth-=1
          if started and depth<=0: break
          if not started and s.rstrip().endswith(';'): break
          j+=1
        n=j-i+1
        if started and n>60: longf.append((n,p,i+1,m.group(6)))
        i=i+1
      else: i+=1
print("files>450:",sorted(bigfiles,reverse=True))
for x in sorted(longf,reverse=True): print(x)
print(len(longf),"functions>60")
